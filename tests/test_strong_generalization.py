"""Invariants of the strong-generalization split on ml-100k (bundled with RecBole)."""
import numpy as np
import pytest
import torch

from recbole_anchor import Config
from recbole_anchor.data.loading import create_dataset, data_preparation
from recbole_anchor.data.strong_generalization import (
    TEST_FOLD_IN,
    TEST_TARGET,
    TRAIN,
    VALID_FOLD_IN,
    VALID_TARGET,
    held_out_sizes,
    n_targets,
)
from recbole_anchor.errors import InvalidConfigError, UnsupportedModelError
from recbole_anchor.model.fold_in import fold_in
from recbole_anchor.registry import build_model


def _config(model="AnchorMultVAE", **overrides):
    base = {"epochs": 1, "show_progress": False, "state": "ERROR"}
    base.update(overrides)
    return Config(model=model, dataset="ml-100k", config_dict=base, cmd_args=[])


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    import os
    import sys

    old, old_argv = os.getcwd(), sys.argv
    os.chdir(tmp_path_factory.mktemp("sg"))
    sys.argv = ["pytest"]
    try:
        config = _config()
        dataset = create_dataset(config)
        loaders = data_preparation(config, dataset)
    finally:
        os.chdir(old)
        sys.argv = old_argv
    return config, dataset, loaders


def _pairs(dataset, mask=None):
    users = dataset.inter_feat[dataset.uid_field].numpy()
    items = dataset.inter_feat[dataset.iid_field].numpy()
    if mask is not None:
        users, items = users[mask], items[mask]
    return users, items


def test_user_groups_are_disjoint_and_cover_all_users(split):
    _, dataset, _ = split
    users, _ = _pairs(dataset)
    role = dataset.role
    train = set(users[role == TRAIN])
    valid = set(users[np.isin(role, (VALID_FOLD_IN, VALID_TARGET))])
    test = set(users[np.isin(role, (TEST_FOLD_IN, TEST_TARGET))])
    assert not train & valid and not train & test and not valid & test
    assert train | valid | test == set(users)
    n = len(set(users))
    assert (len(valid), len(test)) == held_out_sizes([0.8, 0.1, 0.1], n)


def test_fold_in_and_targets_partition_each_held_out_users_items(split):
    config, dataset, _ = split
    users, items = _pairs(dataset)
    role = dataset.role
    for fold_role, target_role in ((VALID_FOLD_IN, VALID_TARGET), (TEST_FOLD_IN, TEST_TARGET)):
        held = np.unique(users[np.isin(role, (fold_role, target_role))])
        for user in held:
            mine = users == user
            fold_in = set(items[mine & (role == fold_role)])
            targets = set(items[mine & (role == target_role)])
            assert not fold_in & targets
            assert fold_in | targets == set(items[mine])  # the user's filtered items
            assert len(targets) == n_targets(mine.sum(), config["fold_in_ratio"])


def test_items_come_from_training_users(split):
    _, dataset, _ = split
    users, items = _pairs(dataset)
    train_items = set(items[dataset.role == TRAIN])
    assert set(items) <= train_items
    assert dataset.item_num == len(train_items) + 1  # + RecBole's padding item 0


def test_training_sees_training_users_only(split):
    _, dataset, (train_data, _, _) = split
    train_users = set(_pairs(dataset, dataset.role == TRAIN)[0])
    seen = set()
    for batch in train_data:
        seen |= set(batch[dataset.uid_field].numpy())
    assert seen == train_users
    assert set(train_data._dataset.inter_feat[dataset.uid_field].numpy()) == train_users


def test_fold_in_is_input_and_never_ranked_targets_never_input(split):
    config, dataset, (train_data, valid_data, test_data) = split
    model = build_model(config, train_data._dataset)
    users, items = _pairs(dataset)
    for loader, fold_role, target_role in (
        (valid_data, VALID_FOLD_IN, VALID_TARGET),
        (test_data, TEST_FOLD_IN, TEST_TARGET),
    ):
        for user in loader.uid_list.numpy():
            mine = users == user
            fold_in = set(items[mine & (dataset.role == fold_role)])
            targets = set(items[mine & (dataset.role == target_role)])
            # masked from ranking (the full-sort loader's history) = fold-in items
            assert set(loader.uid2history_item[user].numpy()) == fold_in
            assert set(loader.uid2positive_item[user].numpy()) == targets
            # the model's input row = fold-in items, never a target
            row = model.get_rating_matrix(torch.tensor([user]))[0]
            assert set(torch.nonzero(row).flatten().numpy()) == fold_in


def test_fold_in_items_get_minus_infinity_in_full_sort(split):
    """RecBole's full-sort evaluation sets the history (fold-in) scores to -inf."""
    config, dataset, (train_data, _, test_data) = split
    from recbole.trainer import Trainer

    model = build_model(config, train_data._dataset)
    trainer = Trainer(config, model)
    trainer.tot_item_num = test_data._dataset.item_num  # as Trainer.evaluate sets it
    batch = next(iter(test_data))
    interaction, scores, _, _ = trainer._full_sort_batch_eval(batch)
    history_u, history_i = batch[1]
    assert torch.isinf(scores[history_u, history_i]).all()
    positive_u, positive_i = batch[2], batch[3]
    assert torch.isfinite(scores[positive_u, positive_i]).all()


def test_same_seed_same_split_other_seed_other_split(recbole_dir):
    roles = []
    for seed in (7, 7, 8):
        dataset = create_dataset(_config(seed=seed))
        roles.append((dataset.inter_feat["user_id"].to_numpy(), dataset.role))
    assert np.array_equal(roles[0][0], roles[1][0]) and np.array_equal(roles[0][1], roles[1][1])
    assert not np.array_equal(roles[0][1], roles[2][1])


def test_held_out_sizes():
    assert held_out_sizes([0.8, 0.1, 0.1], 1000) == (100, 100)
    assert held_out_sizes([8, 1, 1], 1000) == (1, 1)  # counts, not proportions
    assert held_out_sizes([0.8, 10, 20], 1000) == (10, 20)
    with pytest.raises(InvalidConfigError, match="holds out"):
        held_out_sizes([0.8, 600, 600], 1000)
    with pytest.raises(InvalidConfigError, match="whole user count"):
        held_out_sizes([0.8, 10.5, 10], 1000)
    with pytest.raises(InvalidConfigError):
        held_out_sizes([0.8, 0.2], 1000)


def test_n_targets_matches_liang():
    n = np.arange(1, 200)
    assert np.array_equal(n_targets(n, 0.8), (0.2 * n).astype(int))


@pytest.mark.parametrize("model", ["BPR", "LightGCN", "CDAE"])
def test_per_user_embedding_models_are_refused(recbole_dir, model):
    with pytest.raises(UnsupportedModelError, match="one embedding per user"):
        create_dataset(_config(model=model))


def test_bpr_refusal_on_command_line(recbole_dir, capsys):
    from recbole_anchor.cli import main

    assert main(["--model=BPR", "--dataset=ml-100k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "strong-generalization" in err


@pytest.mark.parametrize(
    "model", ["MultiVAE", "MultiDAE", "RecVAE", "MacridVAE", "RaCT", "EASE", "ItemKNN"]
)
def test_recbole_models_fold_in_held_out_users(split, model):
    """Each supported model, built on the training users, scores a held-out user from
    the user's fold-in items once folded in (before, the user's row is empty)."""
    from recbole.data.interaction import Interaction

    _, dataset, (train_data, _, test_data) = split
    config = _config(model=model)
    train = train_data._dataset
    built = config.model_class(config, train)
    built.eval()
    user = test_data.uid_list[:1]
    with torch.no_grad():
        before = built.full_sort_predict(Interaction({"user_id": user})).view(-1)
        fold_in(built, train.with_fold_in())
        after = built.full_sort_predict(Interaction({"user_id": user})).view(-1)
    assert not torch.allclose(before, after)
    if hasattr(built, "get_rating_matrix"):
        row = built.get_rating_matrix(user)[0]
        assert set(torch.nonzero(row).flatten().numpy()) == set(
            test_data.uid2history_item[int(user)].numpy()
        )


def test_ease_is_fitted_on_training_users_only(split):
    import scipy.sparse as sp

    _, _, (train_data, _, _) = split
    config = _config(model="EASE")
    model = build_model(config, train_data._dataset)
    X = train_data._dataset.inter_matrix(form="csr").astype(np.float32)
    G = (X.T @ X + config["reg_weight"] * sp.identity(X.shape[1])).toarray()
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0.0)
    assert np.allclose(model.item_similarity, B, atol=1e-4)
