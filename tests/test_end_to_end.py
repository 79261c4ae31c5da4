"""End to end on ml-100k: AnchorMultVAE learns, on CPU and (when present) on CUDA."""
import pytest
import torch

from recbole_anchor import run_recbole_anchor

from conftest import FAST

SHORT = {**FAST, "metrics": ["NDCG", "Recall"], "valid_metric": "NDCG@10", "topk": [10]}


def test_short_run_beats_popularity(workdir):
    pop = run_recbole_anchor("Pop", "ml-100k", config_dict=SHORT, cmd_args=[])
    ours = run_recbole_anchor(
        "AnchorMultVAE", "ml-100k", config_dict={**SHORT, "epochs": 30}, cmd_args=[]
    )
    assert {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"} <= set(ours)
    assert ours["test_result"]["ndcg@10"] > pop["test_result"]["ndcg@10"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda(workdir):
    result = run_recbole_anchor(
        "AnchorMultVAE", "ml-100k", config_dict={**SHORT, "epochs": 2, "gpu_id": "0"}, cmd_args=[]
    )
    assert 0 < result["test_result"]["ndcg@10"] <= 1
