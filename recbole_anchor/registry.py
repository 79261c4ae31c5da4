"""The one seam between the plugin and RecBole: names, classes, and what RecBole is told.

Lookups, the plugin first, then RecBole:

- :func:`get_model`: plugin models live one per file in
  ``recbole_anchor/model/<submodule>/<name>.py`` (file name = lower-cased class name),
  as in RecBole;
- :func:`get_trainer`: a plugin trainer ``recbole_anchor.trainer.<Model>Trainer`` when a
  model has one, else RecBole's choice; either way with the plugin's training features
  in front (:func:`recbole_anchor.trainer.with_training_features`);
- :func:`build_model`: a model built as RecBole builds one, with held-out users folded
  in under the strong-generalization split.

:func:`install` (called once on ``import recbole_anchor``) tells RecBole's own code
about the plugin, so that RecBole's helpers work with plugin models:

- ``recbole.utils.get_model`` asks :func:`find_plugin_model` first (it only searches
  ``recbole.model``);
- ``recbole.data.utils.get_dataloader`` gives every ``AutoEncoderMixin`` model the
  per-user training loader (RecBole's hard-coded table names only its built-in
  autoencoders; any other model silently gets the per-interaction loader with
  negative sampling);
- RecBole's metric registry (built once from ``recbole.evaluator.metrics``, with no way
  to add one) gets the classes of :mod:`recbole_anchor.evaluator.metrics`
  (``TruncRecall``), so ``metrics``, ``topk`` and ``valid_metric`` accept them;
- ``recbole.quick_start.load_data_and_model`` becomes the plugin's (plugin models,
  the SG split, weights-only checkpoints).
"""
import difflib
import importlib
import importlib.util
import os
import sys

import recbole
import recbole.utils
import recbole.utils.utils
from recbole.config import configurator
from recbole.evaluator import register
from recbole.model.abstract_recommender import AutoEncoderMixin
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_anchor.errors import UnknownModelError
from recbole_anchor.evaluator import metrics
from recbole_anchor.model.fold_in import fold_in
from recbole_anchor.resources import properties_dir
from recbole_anchor.trainer import with_training_features

MODEL_SUBMODULES = ("general_recommender",)

#: RecBole's own model lookup, kept before :func:`install` replaces it.
recbole_get_model = recbole.utils.utils.get_model


def find_plugin_model(model_name):
    """Return the plugin model class called ``model_name``, or None."""
    if not isinstance(model_name, str) or not model_name.isidentifier():
        return None
    for submodule in MODEL_SUBMODULES:
        module_path = f"recbole_anchor.model.{submodule}.{model_name.lower()}"
        if importlib.util.find_spec(module_path) is not None:
            model_class = getattr(importlib.import_module(module_path), model_name, None)
            if model_class is not None:
                return model_class
    return None


def plugin_model_names():
    """Names of the plugin's models (one defaults file each in properties/model)."""
    folder = os.path.join(properties_dir(), "model")
    return sorted(name[: -len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def recbole_model_names():
    """Names of RecBole's models (one defaults file each in its properties/model)."""
    folder = os.path.join(os.path.dirname(recbole.__file__), "properties", "model")
    return sorted(name[: -len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def get_model(model_name):
    """Model class for ``model_name``: a plugin model, else a RecBole model.

    Raises:
        UnknownModelError: neither knows the name; the message suggests close names.
    """
    model_class = find_plugin_model(model_name)
    if model_class is not None:
        return model_class
    try:
        return recbole_get_model(model_name)
    except (ValueError, AttributeError, ImportError):
        pass
    known = plugin_model_names() + recbole_model_names()
    by_lower = {name.lower(): name for name in known}
    close = difflib.get_close_matches(str(model_name), known, n=3, cutoff=0.6)
    if str(model_name).lower() in by_lower:
        close = [by_lower[str(model_name).lower()]]
    hint = f"did you mean {', '.join(close)}?" if close else "model names are case-sensitive"
    raise UnknownModelError(
        f"unknown model '{model_name}': it is neither a recbole_anchor model "
        f"({', '.join(plugin_model_names())}) nor a RecBole model; {hint}"
    )


def get_trainer(model_type, model_name):
    """Trainer class: ``recbole_anchor.trainer.<Model>Trainer`` if the plugin has one,
    else RecBole's choice for the model type and name; with the plugin's training
    features in front."""
    trainers = importlib.import_module("recbole_anchor.trainer")
    trainer = getattr(trainers, model_name + "Trainer", None)
    if trainer is None:
        trainer = recbole_get_trainer(model_type, model_name)
    return with_training_features(trainer)


def build_model(config, train_dataset):
    """``model_class(config, train_dataset)`` on ``config['device']``, as RecBole builds
    a model; when ``train_dataset`` is the training part of an SG split, the model is
    built on the training users only and the held-out users' fold-in rows are
    folded in afterwards."""
    model = config.model_class(config, train_dataset)
    with_fold_in = getattr(train_dataset, "with_fold_in", None)
    if with_fold_in is not None:
        fold_in(model, with_fold_in())
    return model.to(config["device"])


# --- what RecBole is told ------------------------------------------------------------


def _model_lookup():
    def get_model(model_name):
        model_class = find_plugin_model(model_name)
        return model_class if model_class is not None else recbole_get_model(model_name)

    get_model.__doc__ = recbole_get_model.__doc__
    targets = [recbole.utils, recbole.utils.utils, configurator]
    targets += [
        sys.modules[name]
        for name in ("recbole.quick_start.quick_start", "recbole.quick_start")
        if name in sys.modules
    ]
    for module in targets:
        module.get_model = get_model


def _autoencoder_dataloader():
    from recbole.data import utils as data_utils

    recbole_get_dataloader = data_utils.get_dataloader

    def get_dataloader(config, phase):
        model_class = getattr(config, "model_class", None)
        if model_class is None:
            model_class = recbole.utils.get_model(config["model"])
        if isinstance(model_class, type) and issubclass(model_class, AutoEncoderMixin):
            return data_utils._get_AE_dataloader(config, phase)
        return recbole_get_dataloader(config, phase)

    get_dataloader.__doc__ = recbole_get_dataloader.__doc__
    data_utils.get_dataloader = get_dataloader
    importlib.import_module("recbole.data").get_dataloader = get_dataloader


def _plugin_metrics():
    for name, metric_class in vars(metrics).items():
        if isinstance(metric_class, type) and metric_class.__module__ == metrics.__name__:
            key = name.lower()
            register.metrics_dict[key] = metric_class
            register.metric_information[key] = metric_class.metric_need
            register.metric_types[key] = metric_class.metric_type
            if metric_class.smaller and key not in register.smaller_metrics:
                register.smaller_metrics.append(key)


def install(load_data_and_model):
    """Tell RecBole about the plugin (see the module docstring), once.

    ``load_data_and_model``: the plugin's ``recbole_anchor.quick_start`` function of
    that name, which replaces RecBole's.
    """
    _model_lookup()
    _autoencoder_dataloader()
    _plugin_metrics()
    for name in ("recbole.quick_start.quick_start", "recbole.quick_start"):
        importlib.import_module(name).load_data_and_model = load_data_and_model
