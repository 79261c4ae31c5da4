"""The benchmark suite runs (at a tiny shape, so it cannot rot) and its synthetic data
has the promised shape."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))

import micro  # noqa: E402
import synthetic  # noqa: E402
import train_speed  # noqa: E402


def test_synthetic_data_has_the_shape_and_long_tails():
    users, items = synthetic.generate(400, 300, 12_000, seed=3)
    assert len(users) == 12_000
    per_user = np.bincount(users)[1:]
    assert per_user.size == 400 and per_user.min() >= 5
    assert len(np.unique(users * 1000 + items)) == len(users)  # no repeated pair
    assert items.min() >= 1 and items.max() <= 300
    popularity = np.sort(np.bincount(items))[::-1]
    assert popularity[:30].sum() > 0.3 * len(items)  # top 10% of items: > 30%
    assert per_user.max() > 2 * np.median(per_user) and per_user.mean() > np.median(per_user)
    again = synthetic.generate(400, 300, 12_000, seed=3)
    assert np.array_equal(again[0], users) and np.array_equal(again[1], items)


def test_named_shapes():
    assert synthetic.parse_shape("ml-20m") == (136_677, 20_108, 10_000_054)
    assert synthetic.parse_shape("10x20x300") == (10, 20, 300)


@pytest.mark.parametrize("family", ["multvae", "recvae"])
def test_train_speed_runs_and_reports(tmp_path, monkeypatch, family):
    monkeypatch.chdir(tmp_path)
    data, out = tmp_path / "data", tmp_path / "results"
    argv = ["--shape=300x200x6000", f"--data_path={data}", f"--output_dir={out}",
            "--memory_jobs=3", f"--family={family}"]
    assert train_speed.main(argv) == 0
    suffix = "" if family == "multvae" else "-recvae"
    report = json.loads((out / f"train_speed-300x200x6000-cpu{suffix}.json").read_text())
    assert set(report["cases"]) == set(train_speed.CASES)
    plugin, baseline = train_speed.FAMILIES[family]
    assert [report["cases"][c]["model"] for c in train_speed.CASES] == [plugin, plugin, baseline]
    for case in report["cases"].values():
        assert case["epoch_seconds_mean"] > 0 and case["eval_seconds"] > 0
        assert case["test_users"] == 30  # the SG split's 10% of 300 users
        assert case["train_peak_bytes_above_loaded"] > 0
        if family == "multvae":
            assert 0 < case["share_of_matmul_throughput"]
        assert case["test_result"]["ndcg@100"] > 0
    assert report["cases"]["baseline"]["eval_seconds_recbole_default_batch"] > 0
    summary = report["summary"]
    assert summary["matmul_flops_per_second"] > 0
    assert summary["anchor_overhead_epoch"] > 0 and summary["anchor_vs_baseline_train_memory"] > 0


def test_micro_timings_run():
    timings = micro.adam()
    assert set(timings) == {"default", "foreach", "fused"} and min(timings.values()) > 0
    anchor = micro.anchor()
    assert anchor["nonzeros"] > 30_000 and anchor["autograd"] > 0 and anchor["fused"] > 0
