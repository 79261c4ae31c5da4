"""Fold-in: giving a trained model the input rows of users it never trained on.

Under the strong-generalization split a model is built (and, for EASE and ItemKNN,
fitted) on the training users' interactions only; :func:`fold_in` then hands it the
held-out users' fold-in items as the rows it reads at evaluation. Only models that
encode a user from the user's items can do this; a model that learns one embedding
per user (BPR, LightGCN, CDAE, ...) has nothing to score an unseen user with and is
refused by :func:`check_fold_in_support`.
"""
import numpy as np
from recbole.model.general_recommender import (
    EASE,
    ItemKNN,
    MacridVAE,
    MultiDAE,
    MultiVAE,
    Pop,
    RaCT,
    RecVAE,
)

from recbole_anchor.errors import UnsupportedModelError
from recbole_anchor.model.general_recommender.anchormultvae import AnchorMultVAE


def _history_rows(model, dataset):
    model.build_histroy_items(dataset)


def _ease_rows(model, dataset):
    # B was fitted in __init__ on the training users; only the input rows change.
    model.interaction_matrix = dataset.inter_matrix(form="csr").astype(np.float32)


def _item_knn_rows(model, dataset):
    # Item-item similarities w from the training users; scores = X w for every user.
    model.interaction_matrix = dataset.inter_matrix(form="csr").astype(np.float32)
    model.pred_mat = model.interaction_matrix.dot(model.w).tolil()


def _no_user_rows(model, dataset):
    """Pop scores every user alike; there is nothing per user to fold in."""


#: Model class -> how it reads a user's items; looked up along the model's MRO.
FOLD_IN = {
    AnchorMultVAE: _history_rows,
    MultiVAE: _history_rows,
    MultiDAE: _history_rows,
    RecVAE: _history_rows,
    MacridVAE: _history_rows,
    RaCT: _history_rows,
    EASE: _ease_rows,
    ItemKNN: _item_knn_rows,
    Pop: _no_user_rows,
}


def _fold_in_function(model_class):
    for cls in model_class.__mro__:
        if cls in FOLD_IN:
            return FOLD_IN[cls]
    return None


def check_fold_in_support(config):
    """Raise UnsupportedModelError unless ``config``'s model can score held-out users."""
    model_class, name = config.model_class, config["model"]
    user_based_knn = issubclass(model_class, ItemKNN) and config["knn_method"] == "user"
    if _fold_in_function(model_class) is None or user_based_knn:
        supported = ", ".join(sorted(cls.__name__ for cls in FOLD_IN))
        why = (
            "user-based ItemKNN compares users by their training rows"
            if user_based_knn
            else f"{name} learns one embedding per user"
        )
        raise UnsupportedModelError(
            f"{name} cannot be evaluated under the strong-generalization split (SG): "
            f"{why} and cannot score users held out of training; use a model that reads "
            f"a user's items ({supported}) or a RecBole split such as "
            "eval_args.split={'RS': [0.8, 0.1, 0.1]}"
        )


def fold_in(model, dataset):
    """Make ``model`` read user rows from ``dataset`` (the training users'
    interactions plus held-out users' fold-in items); its fitted weights stay."""
    function = _fold_in_function(type(model))
    if function is None:
        raise UnsupportedModelError(
            f"{type(model).__name__} cannot fold in held-out users; see "
            "check_fold_in_support"
        )
    function(model, dataset)

