"""TruncRecall and RecBole's NDCG against a direct numpy implementation of Liang et
al.'s formulas (their notebook's Recall_at_k_batch / NDCG_binary_at_k_batch)."""
import numpy as np
import pytest

import recbole_anchor  # noqa: F401  (registers TruncRecall, numpy aliases RecBole's NDCG uses)
import torch
from recbole.evaluator import Evaluator, metric_types
from recbole.evaluator.collector import DataStruct


def liang_recall(scores, targets, k):
    top = np.argsort(-scores, axis=1)[:, :k]
    predicted = np.zeros_like(targets, dtype=bool)
    np.put_along_axis(predicted, top, True, axis=1)
    hits = np.logical_and(predicted, targets).sum(axis=1)
    return hits / np.minimum(k, targets.sum(axis=1))


def liang_ndcg(scores, targets, k):
    top = np.argsort(-scores, axis=1)[:, :k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (np.take_along_axis(targets, top, axis=1) * discount).sum(axis=1)
    idcg = np.array([discount[: min(n, k)].sum() for n in targets.sum(axis=1)])
    return dcg / idcg


def recbole_rec_topk(scores, targets, max_k):
    """RecBole's ``rec.topk``: hit flags of the top max_k, then |targets|."""
    top = torch.topk(torch.from_numpy(scores), max_k, dim=1).indices.numpy()
    hits = np.take_along_axis(targets, top, axis=1).astype(np.int64)
    return torch.from_numpy(np.hstack([hits, targets.sum(axis=1, keepdims=True)]))


def _config(metrics, topk, places):
    """A RecBole config naming the metrics (this also installs the numpy aliases
    RecBole's metrics use)."""
    from recbole_anchor import Config

    return Config(model="AnchorMultVAE", dataset="ml-100k", cmd_args=[], config_dict={
        "metrics": metrics, "topk": topk, "metric_decimal_place": places,
        "valid_metric": f"{metrics[0]}@{topk[0]}"})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_truncrecall_and_ndcg_match_liang(recbole_dir, seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, topk = 200, 300, [1, 5, 20, 50, 100]
    scores = rng.random((n_users, n_items))
    # targets from 1 to 150 per user: both |T| < K and |T| > K occur
    sizes = rng.integers(1, 150, n_users)
    targets = np.zeros((n_users, n_items), dtype=bool)
    for user, size in enumerate(sizes):
        targets[user, rng.choice(n_items, size, replace=False)] = True
    struct = DataStruct()
    struct.set("rec.topk", recbole_rec_topk(scores, targets, max(topk)))
    result = Evaluator(_config(["TruncRecall", "NDCG"], topk, 12)).evaluate(struct)
    for k in topk:
        assert result[f"truncrecall@{k}"] == pytest.approx(liang_recall(scores, targets, k).mean(), abs=1e-9)
        assert result[f"ndcg@{k}"] == pytest.approx(liang_ndcg(scores, targets, k).mean(), abs=1e-9)


def test_truncrecall_differs_from_recbole_recall_when_targets_exceed_k(recbole_dir):
    targets = np.zeros((1, 10), dtype=bool)
    targets[0, :6] = True
    scores = -np.arange(10, dtype=float)[None, :]  # ranks the 6 targets first
    struct = DataStruct()
    struct.set("rec.topk", recbole_rec_topk(scores, targets, 5))
    result = Evaluator(_config(["TruncRecall", "Recall"], [5], 4)).evaluate(struct)
    assert result["truncrecall@5"] == 1.0  # perfect ranking
    assert result["recall@5"] == pytest.approx(5 / 6, abs=1e-4)


def test_truncrecall_is_registered_with_recbole(recbole_dir):
    from recbole_anchor import Config

    assert "truncrecall" in metric_types
    config = Config(model="AnchorMultVAE", dataset="ml-100k", cmd_args=[],
                    config_dict={"metrics": ["TruncRecall"], "valid_metric": "TruncRecall@20"})
    assert config["valid_metric_bigger"] is True
