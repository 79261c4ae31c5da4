"""Comparison mode: statistics against hand computations, resumption, failures, files."""
import csv
import itertools
import statistics

import numpy as np
import pytest

from recbole_anchor.comparison import runner
from recbole_anchor.comparison.records import RecordStore
from recbole_anchor.comparison.report import significance, summarize
from recbole_anchor.comparison.significance import paired_wilcoxon, relative_change
from recbole_anchor.cli import main
from recbole_anchor.config import Config


def _exact_wilcoxon_p(x, y):
    """Two-sided exact signed-rank p-value by enumerating every sign pattern."""
    d = np.asarray(x) - np.asarray(y)
    ranks = np.argsort(np.argsort(np.abs(d))) + 1  # no ties in the data below
    observed = ranks[d > 0].sum()
    centre = len(d) * (len(d) + 1) / 4
    extreme = 0
    patterns = list(itertools.product([0, 1], repeat=len(d)))
    for signs in patterns:
        w_plus = sum(r for r, s in zip(ranks, signs) if s)
        extreme += abs(w_plus - centre) >= abs(observed - centre) - 1e-9
    return extreme / len(patterns)


def test_paired_wilcoxon_matches_the_exact_test():
    x = [0.31, 0.52, 0.18, 0.44, 0.27, 0.65, 0.12, 0.39]
    y = [0.29, 0.41, 0.22, 0.30, 0.22, 0.50, 0.15, 0.21]  # |differences| all distinct
    assert paired_wilcoxon(x, y) == pytest.approx(_exact_wilcoxon_p(x, y))
    assert paired_wilcoxon(x, x) == 1.0
    with pytest.raises(ValueError, match="same users"):
        paired_wilcoxon(x, y[:-1])


def _record(model, seed, ndcg, per_user, status="ok"):
    return {"model": model, "seed": seed, "status": status, "reason": "",
            "test": {"ndcg@10": ndcg}, "test_per_user": {"ndcg@10": per_user}}


def test_mean_std_and_relative_change_match_a_hand_computation():
    records = [
        _record("A", 1, 0.30, [0.1, 0.5, 0.3]),
        _record("A", 2, 0.36, [0.2, 0.6, 0.28]),
        _record("A", 3, 0.33, [0.3, 0.4, 0.29]),
        _record("B", 1, 0.25, [0.1, 0.3, 0.35]),
        _record("B", 2, 0.27, [0.1, 0.4, 0.31]),
        _record("B", 3, 0.20, [0.2, 0.2, 0.2]),
    ]
    table = summarize(records, ["A", "B"], ["ndcg@10"])
    mean, std, n = table["A"]["ndcg@10"]
    assert n == 3
    assert mean == pytest.approx(statistics.mean([0.30, 0.36, 0.33]))
    assert std == pytest.approx(statistics.stdev([0.30, 0.36, 0.33]))
    change, p = significance(records, ["A", "B"], ["ndcg@10"], "B")["A"]["ndcg@10"]
    assert change == pytest.approx(relative_change(0.33, statistics.mean([0.25, 0.27, 0.20])))
    pooled_a = [0.1, 0.5, 0.3, 0.2, 0.6, 0.28, 0.3, 0.4, 0.29]
    pooled_b = [0.1, 0.3, 0.35, 0.1, 0.4, 0.31, 0.2, 0.2, 0.2]
    assert p == pytest.approx(paired_wilcoxon(pooled_a, pooled_b))


@pytest.fixture
def no_config_check(monkeypatch):
    """The fake runs below use a toy dataset that has no files."""
    monkeypatch.setattr(runner, "check_shared_config", lambda *args: None)


def _fake_run(calls, fail=(), interrupt_at=None):
    def run_one(model, dataset, seed, config_file_list, config_dict, cmd_args, params=None):
        calls.append((model, seed))
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        if model in fail:
            return runner._failed(model, dataset, seed, "cannot run here")
        rng = np.random.default_rng(seed + len(model))
        per_user = rng.random(20).round(3).tolist()
        return {"model": model, "dataset": dataset, "seed": seed, "status": "ok", "reason": "",
                "valid": {}, "test": {"ndcg@10": float(np.mean(per_user))},
                "test_per_user": {"ndcg@10": per_user}}
    return run_one


def test_rerun_skips_finished_runs_and_interruption_loses_nothing(tmp_path, monkeypatch,
                                                                  no_config_check):
    calls = []
    monkeypatch.setattr(runner, "run_one", _fake_run(calls, interrupt_at=4))
    with pytest.raises(KeyboardInterrupt):
        runner.run_comparison(["A", "B"], [1, 2], "toy", output_dir=str(tmp_path), log=lambda m: None)
    store = RecordStore(str(tmp_path))
    assert [store.has(m, s) for m, s in [("A", 1), ("B", 1), ("A", 2), ("B", 2)]] == [
        True, True, True, False]

    calls.clear()
    monkeypatch.setattr(runner, "run_one", _fake_run(calls))
    paths = runner.run_comparison(["A", "B"], [1, 2], "toy", output_dir=str(tmp_path), log=lambda m: None)
    assert calls == [("B", 2)]
    first = open(paths["md"]).read()

    calls.clear()
    runner.run_comparison(["A", "B"], [1, 2], "toy", output_dir=str(tmp_path), log=lambda m: None)
    assert calls == [] and open(paths["md"]).read() == first


def test_a_failing_model_is_reported_and_the_others_run(tmp_path, monkeypatch, no_config_check):
    calls = []
    monkeypatch.setattr(runner, "run_one", _fake_run(calls, fail={"BPR"}))
    paths = runner.run_comparison(["A", "BPR", "B"], [1], "toy", output_dir=str(tmp_path),
                                  baseline="B", log=lambda m: None)
    assert calls == [("A", 1), ("BPR", 1), ("B", 1)]
    rows = list(csv.DictReader(open(paths["csv"])))
    assert {(r["model"], r["status"]) for r in rows} == {("A", "ok"), ("BPR", "failed"), ("B", "ok")}
    markdown = open(paths["md"]).read()
    assert "BPR, seed 1: cannot run here" in markdown
    assert "| BPR | failed |" in markdown


def test_each_baseline_gets_its_own_paired_table(tmp_path, monkeypatch, no_config_check):
    """``--baseline="B,D"``: every other model against B, then against D, each table
    the same numbers as a comparison with that baseline alone."""
    from recbole_anchor.errors import RecBoleAnchorError

    monkeypatch.setattr(runner, "run_one", _fake_run([]))
    models = ["A", "B", "C", "D"]
    both = open(runner.run_comparison(models, [1, 2], "toy", output_dir=str(tmp_path),
                                      baseline="B,D", log=lambda m: None)["md"]).read()
    alone = {b: open(runner.run_comparison(models, [1, 2], "toy", output_dir=str(tmp_path),
                                           baseline=b, log=lambda m: None)["md"]).read()
             for b in "BD"}
    sections = {b: text.split(f"Against {b}:")[1].split("\n\n")[1] for b, text in alone.items()}
    assert both.index(sections["B"]) < both.index(sections["D"])
    assert "| B |" in sections["D"] and "| D |" in sections["B"] and "| B |" not in sections["B"]
    with pytest.raises(RecBoleAnchorError, match="baseline 'E' is not among"):
        runner.run_comparison(models, [1], "toy", output_dir=str(tmp_path), baseline="B,E",
                              log=lambda m: None)


def test_command_line_comparison_writes_all_tables(workdir):
    """The issue's check, smaller; run twice into two folders, the same seeds give the
    same numbers (CPU reproducibility of the comparison mode)."""
    args = ["--model=AnchorMultVAE,Pop", "--dataset=ml-100k", "--seed=1,2", "--epochs=1",
            "--output_dir=OUT", "--eval_batch_size=2000000", "--metrics=['NDCG','Recall']",
            "--topk=[10]", "--valid_metric=NDCG@10"]
    assert main(args) == 0
    out = workdir / "OUT"
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    metrics = {r["metric"] for r in rows}
    assert metrics == {"ndcg@10", "recall@10"}
    for metric in metrics:
        assert len([r for r in rows if r["metric"] == metric]) == 2 * 2
    markdown = open(out / "comparison.md").read()
    assert "±" in markdown and "Against Pop" in markdown and "p" in markdown
    assert (out / "comparison.tex").read_text().startswith("\\begin{table}")
    assert (out / "comparison.png").stat().st_size > 0

    assert main([arg.replace("OUT", "OUT2") for arg in args]) == 0
    assert (workdir / "OUT2" / "comparison.csv").read_text() == (out / "comparison.csv").read_text()


def test_model_variants_parse_and_keep_separate_records(tmp_path):
    from recbole_anchor.command_line import parse_variant, split_models
    from recbole_anchor.errors import InvalidConfigError

    spec = "AnchorMultVAE,AnchorMultVAE[anchor_terms=['pull','spread'];anchor_weight=0.3],EASE"
    models = split_models(spec)
    assert models == ["AnchorMultVAE", "AnchorMultVAE[anchor_terms=['pull','spread'];anchor_weight=0.3]", "EASE"]
    assert parse_variant(models[1]) == ("AnchorMultVAE", {"anchor_terms": ["pull", "spread"], "anchor_weight": 0.3})
    assert parse_variant("EASE") == ("EASE", {})
    with pytest.raises(InvalidConfigError, match="key=value"):
        parse_variant("AnchorMultVAE[anchor_weight]")
    store = RecordStore(str(tmp_path))
    paths = {store.path(m, 1) for m in ["A[x=0.1]", "A[x=0_1]", "A"]}
    assert len(paths) == 3


def test_a_configuration_no_model_can_use_stops_before_running(workdir):
    from recbole_anchor.errors import InvalidConfigError

    with pytest.raises(InvalidConfigError, match="valid_metric=MRR@10 is not computed"):
        runner.run_comparison(["AnchorMultVAE", "Pop"], [1], "ml-100k",
                              config_dict={"metrics": ["NDCG"], "valid_metric": "MRR@10"},
                              cmd_args=[], log=lambda m: None)
    assert not (workdir / "results" / "ml-100k" / "runs").exists() or not any(
        (workdir / "results" / "ml-100k" / "runs").iterdir())


def test_a_variants_values_win_over_the_command_line(monkeypatch):
    """``--anchor_weight=0.5`` with ``AnchorMultVAE[anchor_weight=0]``: the variant still
    runs at 0 (RecBole's Config prefers command-line values to config_dict ones)."""
    import recbole_anchor.quick_start as quick_start

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        return {"best_valid_result": {}, "test_result": {}}

    monkeypatch.setattr(quick_start, "run_recbole_anchor", fake)
    record = runner.run_one("AnchorMultVAE[anchor_weight=0]", "ml-100k", 1, None, {},
                            ["--anchor_weight=0.5", "--epochs=2"], params={"dropout_prob": 0.3})
    assert record["status"] == "ok"
    assert seen["cmd_args"] == ["--epochs=2"]
    assert seen["config_dict"] == {"dropout_prob": 0.3, "anchor_weight": 0, "seed": 1}
    config = Config("AnchorMultVAE", "ml-100k", config_dict=seen["config_dict"],
                    cmd_args=seen["cmd_args"])
    assert config["anchor_weight"] == 0 and config["epochs"] == 2
