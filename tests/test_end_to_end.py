"""End to end on ml-100k: AnchorMultVAE learns (it beats popularity on the same test
users by a clear, paired margin), a seed reproduces a run exactly, and (when present)
it trains as well on CUDA."""
import math

import numpy as np
import pytest
import torch

from recbole_anchor import run_recbole_anchor

from conftest import FAST

SHORT = {**FAST, "metrics": ["NDCG", "Recall"], "valid_metric": "NDCG@10", "topk": [10]}


def _paired_margin(ours, theirs, metric="ndcg@10"):
    """Mean per-user difference and its standard error, over the same test users."""
    a, b = np.asarray(ours["test_per_user"][metric]), np.asarray(theirs["test_per_user"][metric])
    assert a.shape == b.shape and len(a) > 50  # one value per test user, the same users
    difference = a - b
    return difference.mean(), difference.std(ddof=1) / math.sqrt(len(difference))


@pytest.fixture(scope="module")
def popularity(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("pop"))
        patch.setattr("sys.argv", ["pytest"])
        return run_recbole_anchor("Pop", "ml-100k", config_dict=SHORT, cmd_args=[])


def test_short_run_beats_popularity_by_a_clear_margin(workdir, popularity):
    ours = run_recbole_anchor(
        "AnchorMultVAE", "ml-100k", config_dict={**SHORT, "epochs": 30}, cmd_args=[]
    )
    assert {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"} <= set(ours)
    mean, error = _paired_margin(ours, popularity)
    assert mean > 3 * error  # paired over the same test users (here 5.3 standard errors)
    assert ours["test_result"]["ndcg@10"] > 1.2 * popularity["test_result"]["ndcg@10"]
    # the reported test result is the mean of the per-user values
    assert ours["test_result"]["ndcg@10"] == pytest.approx(
        np.mean(ours["test_per_user"]["ndcg@10"]), abs=1e-4
    )


def test_the_same_seed_reproduces_the_run(workdir):
    settings = {**SHORT, "epochs": 3, "seed": 5}
    first = run_recbole_anchor("AnchorMultVAE", "ml-100k", config_dict=settings, cmd_args=[])
    again = run_recbole_anchor("AnchorMultVAE", "ml-100k", config_dict=settings, cmd_args=[])
    other = run_recbole_anchor(
        "AnchorMultVAE", "ml-100k", config_dict={**settings, "seed": 6}, cmd_args=[]
    )
    assert again["best_valid_score"] == first["best_valid_score"]
    assert again["test_result"] == first["test_result"]
    assert again["test_per_user"] == first["test_per_user"]
    assert other["test_per_user"] != first["test_per_user"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda_and_beats_popularity(workdir, popularity):
    result = run_recbole_anchor(
        "AnchorMultVAE", "ml-100k", config_dict={**SHORT, "epochs": 30, "gpu_id": "0"}, cmd_args=[]
    )
    mean, error = _paired_margin(result, popularity)
    assert mean > 3 * error
    assert result["test_result"]["ndcg@10"] > 1.2 * popularity["test_result"]["ndcg@10"]
