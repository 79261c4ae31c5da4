"""The benchmark code gets right what its numbers rest on: the synthetic data has the
requested shape and long tails and is written as the atomic file RecBole reads; the
report's ratios and FLOP shares are computed from the measured values; the JSON holds
the keys benchmarks/README.md reads. No timing is asserted (they depend on the machine)."""
import contextlib
import io
import json
import os
import statistics
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))

import micro  # noqa: E402
import synthetic  # noqa: E402
import train_speed  # noqa: E402


# ------------------------------------------------------------------ synthetic data
def test_synthetic_data_has_the_shape_and_long_tails():
    users, items = synthetic.generate(400, 300, 12_000, seed=3)
    assert len(users) == 12_000
    per_user = np.bincount(users)[1:]
    assert per_user.size == 400 and per_user.min() >= 5
    assert per_user.max() <= 300 // 5  # at most a fifth of the items per user
    assert len(np.unique(users * 1000 + items)) == len(users)  # no repeated pair
    assert items.min() >= 1 and items.max() <= 300
    popularity = np.sort(np.bincount(items))[::-1]
    assert popularity[:30].sum() > 0.3 * len(items)  # top 10% of items: > 30%
    assert per_user.max() > 2 * np.median(per_user) and per_user.mean() > np.median(per_user)
    again = synthetic.generate(400, 300, 12_000, seed=3)
    assert np.array_equal(again[0], users) and np.array_equal(again[1], items)
    other = synthetic.generate(400, 300, 12_000, seed=4)
    assert not np.array_equal(other[1], items)


def test_impossible_shape_is_refused():
    with pytest.raises(ValueError, match="cannot give 10 users"):
        synthetic.generate(10, 20, 30)  # fewer than 5 items per user
    with pytest.raises(ValueError, match="cannot give 10 users"):
        synthetic.generate(10, 50, 200)  # more than 50 // 5 items per user


def test_named_shapes():
    assert synthetic.parse_shape("ml-20m") == (136_677, 20_108, 10_000_054)
    assert synthetic.parse_shape("10x20x300") == (10, 20, 300)


def test_atomic_file_holds_exactly_the_generated_pairs(tmp_path):
    """ensure_dataset writes the header and one line per pair, and does not rewrite
    a dataset that exists."""
    name = synthetic.ensure_dataset("50x40x400", str(tmp_path), seed=1)
    path = tmp_path / name / f"{name}.inter"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert name == "synthetic-50x40x400"
    assert lines[0] == "user_id:token\titem_id:token"
    pairs = np.array([line.split("\t") for line in lines[1:]], dtype=np.int64)
    users, items = synthetic.generate(50, 40, 400, seed=1)
    assert np.array_equal(pairs[:, 0], users) and np.array_equal(pairs[:, 1], items)
    before = path.stat().st_mtime_ns
    assert synthetic.ensure_dataset("50x40x400", str(tmp_path), seed=2) == name
    assert path.stat().st_mtime_ns == before


# ------------------------------------------------------------------- micro timings
def test_median_ms_is_the_median_of_the_timed_calls_after_the_warm_up(monkeypatch):
    """With a clock that advances by the call's index in ms, the warm-up calls (the
    slowest here: first) are left out and the median of the rest is returned."""
    clock = {"now": 0.0, "calls": 0}
    durations = [50, 40, 1, 2, 3, 4, 100]  # 2 warm-up calls, then 5 timed ones

    def fake_counter():
        return clock["now"]

    def call():
        clock["now"] += durations[clock["calls"]] / 1e3
        clock["calls"] += 1

    monkeypatch.setattr(micro.time, "perf_counter", fake_counter)
    assert micro.median_ms(call, repeats=5, warmup=2) == pytest.approx(
        statistics.median([1, 2, 3, 4, 100])
    )
    assert clock["calls"] == 7


def test_micro_batch_has_the_described_rows():
    """500 users with 5-149 distinct items each, out of ML-20M's 20,108, seeded."""
    rows = micro.batch_rows()
    counts = rows.counts
    assert rows.n_rows == micro.BATCH == 500 and rows.n_items == micro.N_ITEMS == 20_108
    assert counts.min() >= 5 and counts.max() <= 149
    dense = rows.to_dense()
    assert torch.equal(dense.sum(dim=1), counts.to(dense.dtype))  # distinct items
    assert torch.equal(micro.batch_rows().items, rows.items)


# ------------------------------------------------------------------- train_speed
@pytest.fixture(scope="module", params=["multvae", "recvae"])
def train_speed_report(request, tmp_path_factory):
    """One run of train_speed.py at a tiny shape: (family, argv, report, table)."""
    family = request.param
    folder = tmp_path_factory.mktemp(family)
    argv = ["--shape=300x200x6000", f"--data_path={folder / 'data'}",
            f"--output_dir={folder / 'results'}", "--memory_jobs=3", f"--family={family}"]
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(folder)
        assert train_speed.main(argv) == 0
    suffix = "" if family == "multvae" else "-recvae"
    path = folder / "results" / f"train_speed-300x200x6000-cpu{suffix}.json"
    return family, argv, json.loads(path.read_text()), printed.getvalue()


def test_train_speed_reports_the_cases_and_their_settings(train_speed_report):
    family, argv, report, _ = train_speed_report
    assert report["command"] == " ".join(["python", "benchmarks/train_speed.py"] + argv)
    assert (report["shape"], report["family"], report["device"]) == ("300x200x6000", family, "cpu")
    assert report["data_prep"]["n_users"] == 300 and report["data_prep"]["n_items"] == 200
    assert report["data_prep"]["n_interactions"] == 6000
    plugin, baseline = train_speed.FAMILIES[family]
    assert list(report["cases"]) == list(train_speed.CASES)
    assert [report["cases"][c]["model"] for c in train_speed.CASES] == [plugin, plugin, baseline]
    for case in report["cases"].values():
        assert len(case["epoch_seconds"]) == report["epochs_timed"]
        assert case["epoch_seconds_mean"] == pytest.approx(statistics.mean(case["epoch_seconds"]))
        assert case["test_users"] == 30  # the SG split's 10% of 300 users
        assert set(case["test_result"]) == {
            f"{metric}@{k}" for metric in ("truncrecall", "ndcg") for k in (20, 50, 100)
        }
        for key in ("train_peak_bytes_above_loaded", "data_prep_peak_bytes", "data_prep_seconds"):
            assert key in case  # merged from the memory subprocesses
    assert "eval_seconds_recbole_default_batch" in report["cases"]["baseline"]


def test_train_speed_ratios_are_computed_from_the_measured_values(train_speed_report):
    family, _, report, table = train_speed_report
    anchor, anchor0, baseline = (report["cases"][c] for c in train_speed.CASES)
    summary = report["summary"]
    assert set(summary) == {key for _, key, _ in train_speed.RATIOS} | {"matmul_flops_per_second"}
    assert summary["anchor_overhead_epoch"] == anchor["epoch_seconds_mean"] / anchor0["epoch_seconds_mean"]
    assert summary["anchor_vs_baseline_epoch"] == anchor["epoch_seconds_mean"] / baseline["epoch_seconds_mean"]
    assert summary["anchor_vs_baseline_train_memory"] == (
        anchor["train_peak_bytes_above_loaded"] / max(1, baseline["train_peak_bytes_above_loaded"])
    )
    assert summary["anchor_vs_baseline_eval"] == anchor["eval_seconds"] / baseline["eval_seconds"]
    assert summary["anchor_vs_baseline_default_batch_eval"] == (
        anchor["eval_seconds"] / baseline["eval_seconds_recbole_default_batch"]
    )
    for label, key, _ in train_speed.RATIOS:  # the table prints the same ratios
        assert f"{label + ':':<52}{summary[key]:.2f}x" in table
    for case in report["cases"].values():
        if family == "recvae":
            assert case["epoch_flops"] is None and case["share_of_matmul_throughput"] is None
            continue
        achieved = case["epoch_flops"] / case["epoch_seconds_mean"]
        assert case["achieved_flops_per_second"] == achieved
        assert case["share_of_matmul_throughput"] == achieved / summary["matmul_flops_per_second"]


def test_train_speed_flop_counts_follow_the_formula(train_speed_report):
    """FLOPs of one epoch over the 240 training users: the dense baseline's first layer
    reads every item, the sparse plugin's only the users' nonzeros (the same count
    the anchor centroid reads)."""
    family, _, report, _ = train_speed_report
    if family == "recvae":
        pytest.skip("the recvae family reports no FLOP count")
    n_train, n_items = 240, 201  # RecBole's item ids include the padding id 0
    hidden, latent = train_speed.HIDDEN, train_speed.LATENT
    rest = 6 * (hidden * 2 * latent + latent * hidden + hidden * n_items) * n_train
    flops = {case: report["cases"][case]["epoch_flops"] for case in train_speed.CASES}
    assert flops["baseline"] == rest + 4 * hidden * n_items * n_train
    nnz, remainder = divmod(flops["anchor0"] - rest, 4 * hidden)
    assert remainder == 0 and 5 * n_train <= nnz <= 6000
    assert flops["anchor"] - flops["anchor0"] == 4 * latent * nnz
    assert flops["anchor"] == train_speed.epoch_flops("anchor", True, n_items, nnz, n_train)
