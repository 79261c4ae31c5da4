"""Tuned comparisons: every model searched with the same budget on validation only."""
import csv
import glob
import json
import math
import os

import pytest

from recbole_anchor.cli import main
from recbole_anchor.comparison import runner
from recbole_anchor.comparison import tuning as comparison_tuning
from recbole_anchor.comparison.records import RecordStore
from recbole_anchor.config import Config
from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.resources import properties_dir
from recbole_anchor.tuning import optuna_search
from recbole_anchor.tuning.space import optuna_space, read_params_file

HYPER_FILES = sorted(glob.glob(os.path.join(properties_dir(), "hyper", "*.hyper")))
SG_MODELS = ["AnchorMultVAE", "AnchorRecVAE", "MultiVAE", "MultiDAE", "RecVAE", "MacridVAE",
             "RaCT", "EASE", "ItemKNN"]


def test_every_sg_model_has_a_search_space_over_its_own_keys_holding_its_defaults():
    assert {os.path.basename(p)[:-6] for p in HYPER_FILES} >= set(SG_MODELS)
    for path in HYPER_FILES:
        model = os.path.basename(path)[:-6]
        config = Config(model, "ml-100k", cmd_args=[])
        for param in optuna_space(read_params_file(path)):
            assert param.name in config.final_config_dict, (model, param.name)
            default = config[param.name]
            dist = param.distribution
            if hasattr(dist, "choices"):
                assert default in dist.choices, (model, param.name)
            else:
                assert dist.low <= default <= dist.high, (model, param.name, default)


def test_ease_space_holds_the_ml1m_and_ml20m_optima():
    (param,) = optuna_space(read_params_file(os.path.join(properties_dir(), "hyper", "EASE.hyper")))
    # Steck (WWW 2019): lambda = 500 on ML-20M; our ML-1M searches land near 350-500.
    assert param.distribution.log and param.distribution.low <= 50 and param.distribution.high >= 5000


def test_a_variant_and_the_command_line_drop_the_keys_they_fix():
    _, full = comparison_tuning.search_space("AnchorMultVAE", set())
    _, variant = comparison_tuning.search_space("AnchorMultVAE", {"anchor_weight"})
    assert "anchor_weight" in [p[0] for p in full]
    assert [p for p in full if p[0] != "anchor_weight"] == variant
    _, fixed = comparison_tuning.search_space("AnchorMultVAE", {"anchor_weight", "learning_rate"})
    assert [p[0] for p in fixed] == ["dropout_prob", "anneal_cap"]
    assert comparison_tuning.search_space("Pop", set()) == (None, [])


def test_tune_settings_from_flag_or_config_block(tmp_path):
    assert comparison_tuning.tune_settings() is None
    assert comparison_tuning.tune_settings(tune="4")["trials"] == 4
    block = tmp_path / "tune.yaml"
    block.write_text("tune: {trials: 6, sampler: random}\n")
    settings = comparison_tuning.tune_settings([str(block)])
    assert settings["trials"] == 6 and settings["sampler"] == "random"
    assert comparison_tuning.tune_settings([str(block)], tune="2")["trials"] == 2
    for bad in ("0", "2.5", "x"):
        with pytest.raises(InvalidConfigError, match="integer >= 1"):
            comparison_tuning.tune_settings(tune=bad)
    block.write_text("tune: {trails: 6}\n")
    with pytest.raises(InvalidConfigError, match="unknown keys"):
        comparison_tuning.tune_settings([str(block)])


class FakeRuns:
    """Stands in for training: the validation score prefers reg_weight near 50, the test
    score near 5000; ``interrupt_at`` raises KeyboardInterrupt at that call."""

    def __init__(self, interrupt_at=None):
        self.calls, self.interrupt_at = [], interrupt_at

    def __call__(self, config_dict, **kwargs):
        self.calls.append(config_dict)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        log_weight = math.log(float(config_dict["reg_weight"]))
        valid = 1.0 - abs(log_weight - math.log(50)) / 10
        test = 1.0 - abs(log_weight - math.log(5000)) / 10
        return {"best_valid_score": valid, "best_valid_result": {"ndcg@100": valid},
                "test_result": {"ndcg@100": test}}


def _tune(tmp_path, trials=6):
    store = comparison_tuning.TuningStore(str(tmp_path))
    settings = {"trials": trials, "storage": None, "sampler": "tpe", "pruner": "none"}
    return comparison_tuning.tune_model("EASE", "ml-100k", 1, settings, store, None, {},
                                        log=lambda line: None)


def test_tuning_picks_by_validation_never_by_test(tmp_path, monkeypatch):
    fake = FakeRuns()
    monkeypatch.setattr(optuna_search, "run_recbole_anchor", fake)
    record = _tune(tmp_path)
    assert len(fake.calls) == 6
    # The first trial is the defaults (EASE's reg_weight 250), every trial on seed 1.
    assert float(fake.calls[0]["reg_weight"]) == 250.0
    assert {call["seed"] for call in fake.calls} == {1}
    weights = [float(call["reg_weight"]) for call in fake.calls]
    by_valid = min(weights, key=lambda w: abs(math.log(w) - math.log(50)))
    by_test = min(weights, key=lambda w: abs(math.log(w) - math.log(5000)))
    assert by_valid != by_test
    assert record["params"]["reg_weight"] == pytest.approx(by_valid)
    assert record["defaults"] == {"reg_weight": 250.0}
    assert record["default_valid_score"] == pytest.approx(1 - abs(math.log(250 / 50)) / 10)
    assert record["n_complete"] == 6 and record["trials"] == 6

    # A rerun with the same budget reads the record: no trial runs.
    fake.calls.clear()
    assert _tune(tmp_path) == json.loads(json.dumps(record))
    assert fake.calls == []


def test_interrupted_tuning_resumes_with_the_same_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(optuna_search, "run_recbole_anchor", FakeRuns(interrupt_at=3))
    with pytest.raises(KeyboardInterrupt):
        _tune(tmp_path, trials=5)
    assert not os.path.exists(tmp_path / "tuning" / "EASE.json")
    fake = FakeRuns()
    monkeypatch.setattr(optuna_search, "run_recbole_anchor", fake)
    record = _tune(tmp_path, trials=5)
    # Two trials finished before the interruption; the interrupted one did not count.
    assert len(fake.calls) == 3
    # The resumed search draws new configurations, not the ones tried before.
    import optuna

    trials = optuna.load_study(study_name="compare-ml-100k-EASE",
                               storage=f"sqlite:///{tmp_path}/tuning/EASE.db").get_trials()
    complete = [t.params["reg_weight"] for t in trials if t.state.name == "COMPLETE"]
    assert len(set(complete)) == len(complete) == 5
    assert record["n_complete"] == 5 and record["n_failed"] == 0
    assert record["default_valid_score"] is not None


def test_a_trial_whose_process_was_killed_is_run_again(tmp_path, monkeypatch):
    """A killed run leaves its trial RUNNING in the study; the rerun retries it once its
    heartbeat is stale and still ends with the budget's trials, the defaults among them."""
    import optuna

    from recbole_anchor.tuning.storage import open_storage

    monkeypatch.setattr(comparison_tuning, "PRIVATE_HEARTBEAT_INTERVAL", 1)
    monkeypatch.setattr(comparison_tuning, "PRIVATE_GRACE_PERIOD", 2)
    monkeypatch.setattr(comparison_tuning, "POLL_SECONDS", 0.2)
    os.makedirs(tmp_path / "tuning")
    storage = open_storage(f"sqlite:///{tmp_path}/tuning/EASE.db", 1, 2)
    study = optuna.create_study(study_name="compare-ml-100k-EASE", storage=storage,
                                direction="maximize")
    study.enqueue_trial({"reg_weight": 250.0})
    killed = study.ask()
    killed.suggest_float("reg_weight", math.exp(2.302585), math.exp(9.903488), log=True)
    storage.record_heartbeat(killed._trial_id)  # then its process dies
    fake = FakeRuns()
    monkeypatch.setattr(optuna_search, "run_recbole_anchor", fake)
    record = _tune(tmp_path, trials=3)
    states = [t.state.name for t in study.get_trials()]
    assert states.count("COMPLETE") == 3 and states[0] == "FAIL"
    assert record["n_complete"] == 3 and record["default_valid_score"] is not None
    assert 250.0 in [float(call["reg_weight"]) for call in fake.calls]


def test_workers_sharing_a_study_split_the_budget(tmp_path, monkeypatch):
    """Two workers of the same comparison on one shared study run the budget's trials
    between them, exactly, not the budget each, and both choose the same values."""
    import threading
    import time

    monkeypatch.setattr(comparison_tuning, "POLL_SECONDS", 0.05)
    fake = FakeRuns()

    def slow(config_dict, **kwargs):
        time.sleep(0.3)
        return fake(config_dict, **kwargs)

    monkeypatch.setattr(optuna_search, "run_recbole_anchor", slow)
    settings = {"trials": 6, "storage": str(tmp_path / "shared.journal"), "sampler": "tpe",
                "pruner": "none"}
    records = []

    def worker(folder):
        store = comparison_tuning.TuningStore(str(tmp_path / folder))
        records.append(comparison_tuning.tune_model("EASE", "ml-100k", 1, settings, store, None,
                                                    {}, log=lambda line: None))

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake.calls) == 6
    assert [float(call["reg_weight"]) for call in fake.calls].count(250.0) == 1  # defaults once
    assert records[0]["params"] == records[1]["params"]
    assert records[0]["n_complete"] == 6


def test_a_trial_started_once_earlier_ones_fill_the_budget_spends_none_of_it():
    """Workers that start at the same moment all see room in the budget; trial numbers
    settle it: a trial whose earlier trials (running or spent) fill the budget stops."""
    import optuna

    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 0.3)                       # complete: spent
    interrupted = study.ask()
    interrupted.set_user_attr("fail_reason", optuna_search.INTERRUPTED)
    study.tell(interrupted, state=optuna.trial.TrialState.FAIL)  # no budget
    study.ask()                                        # running: holds a place
    late = study.ask()
    assert optuna_search.budget_filled(optuna_search.earlier_trials(late), 2)
    assert not optuna_search.budget_filled(optuna_search.earlier_trials(late), 3)
    late.set_user_attr("fail_reason", f"{optuna_search.OVER_BUDGET} 2 trials")
    study.tell(late, state=optuna.trial.TrialState.FAIL)
    assert not optuna_search.spends_budget(study.trials[-1])


def test_a_model_whose_every_trial_fails_runs_at_its_defaults(tmp_path, monkeypatch):
    def broken(config_dict, **kwargs):
        raise ValueError("cannot train here")

    monkeypatch.setattr(optuna_search, "run_recbole_anchor", broken)
    record = _tune(tmp_path, trials=2)
    assert record["params"] == {} and record["n_failed"] == 2
    assert record["note"] == "defaults: no trial of 2 completed (ValueError: cannot train here)"


def test_comparison_runs_every_seed_with_the_chosen_values(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "check_shared_config", lambda *args: None)
    chosen = {"A": {"model": "A", "trials": 3, "seed": 1, "params": {"x": 0.5},
                    "defaults": {"x": 0.1}, "n_complete": 3, "n_pruned": 0, "n_failed": 0,
                    "best_valid_score": 0.3, "default_valid_score": 0.2, "valid_metric": "m"},
              "B": {"model": "B", "trials": 3, "seed": 1, "params": {}, "note": "defaults: no search space",
                    "n_complete": 0, "best_valid_score": None, "default_valid_score": None}}
    seen = []
    monkeypatch.setattr(comparison_tuning, "tune_models", lambda models, dataset, seed, *a, **k: (
        seen.append(seed) or chosen))

    calls = []

    def run_one(model, dataset, seed, config_file_list, config_dict, cmd_args, params=None):
        calls.append((model, seed, params))
        return {"model": model, "dataset": dataset, "seed": seed, "params": params,
                "status": "ok", "reason": "", "valid": {}, "test": {"m": 0.1 + seed},
                "test_per_user": {"m": [0.1, 0.2]}}

    monkeypatch.setattr(runner, "run_one", run_one)
    paths = runner.run_comparison(["A", "B"], [3, 4], "toy", output_dir=str(tmp_path), tune=3,
                                  log=lambda line: None)
    assert seen == [3]  # tuned on the first seed's split
    assert calls == [("A", 3, {"x": 0.5}), ("B", 3, {}), ("A", 4, {"x": 0.5}), ("B", 4, {})]
    markdown = open(paths["md"]).read()
    assert "same budget, 3 trials" in markdown
    assert "| A | x=0.5 (0.1) | 3 / 0 / 0 | 0.3000 (0.2000) |" in markdown
    assert "| B | defaults: no search space |" in markdown
    rows = list(csv.DictReader(open(paths["hyperparameters"])))
    assert [(r["model"], r["parameter"], r["value"]) for r in rows] == [("A", "x", "0.5"), ("B", "", "")]

    # Finished runs with the same values are kept; other values run again.
    calls.clear()
    runner.run_comparison(["A", "B"], [3, 4], "toy", output_dir=str(tmp_path), tune=3,
                          log=lambda line: None)
    assert calls == []
    chosen["A"]["params"] = {"x": 0.7}
    runner.run_comparison(["A", "B"], [3, 4], "toy", output_dir=str(tmp_path), tune=3,
                          log=lambda line: None)
    assert calls == [("A", 3, {"x": 0.7}), ("A", 4, {"x": 0.7})]
    assert RecordStore(str(tmp_path)).read("A", 4)["params"] == {"x": 0.7}


def test_untuned_runs_count_when_tuning_keeps_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "check_shared_config", lambda *args: None)
    calls = []

    def run_one(model, dataset, seed, config_file_list, config_dict, cmd_args, params=None):
        calls.append((model, seed, params))
        return {"model": model, "dataset": dataset, "seed": seed, "params": params or {},
                "status": "ok", "reason": "", "valid": {}, "test": {"m": 0.1},
                "test_per_user": {"m": [0.1]}}

    monkeypatch.setattr(runner, "run_one", run_one)
    runner.run_comparison(["A"], [1, 2], "toy", output_dir=str(tmp_path), log=lambda line: None)
    assert calls == [("A", 1, {}), ("A", 2, {})]  # untuned: at the defaults

    chosen = {"A": {"model": "A", "trials": 3, "seed": 1, "params": {"x": 0.1},
                    "defaults": {"x": 0.1}, "n_complete": 3, "n_pruned": 0, "n_failed": 0,
                    "best_valid_score": 0.3, "default_valid_score": 0.3, "valid_metric": "m"}}
    monkeypatch.setattr(comparison_tuning, "tune_models", lambda *a, **k: chosen)
    calls.clear()
    runner.run_comparison(["A"], [1, 2], "toy", output_dir=str(tmp_path), tune=3,
                          log=lambda line: None)
    assert calls == []  # the tuning kept the defaults: the runs at the defaults stand
    chosen["A"]["params"] = {"x": 0.7}
    runner.run_comparison(["A"], [1, 2], "toy", output_dir=str(tmp_path), tune=3,
                          log=lambda line: None)
    assert calls == [("A", 1, {"x": 0.7}), ("A", 2, {"x": 0.7})]


def test_untuned_tables_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "check_shared_config", lambda *args: None)
    monkeypatch.setattr(runner, "run_one", lambda model, dataset, seed, *a, **k: {
        "model": model, "dataset": dataset, "seed": seed, "status": "ok", "reason": "",
        "valid": {}, "test": {"m": 0.1}, "test_per_user": {"m": [0.1]}})
    paths = runner.run_comparison(["A", "B"], [1], "toy", output_dir=str(tmp_path),
                                  log=lambda line: None)
    assert "Hyperparameters: not tuned." in open(paths["md"]).read()
    assert "hyperparameters" not in paths


def test_command_line_tuned_comparison_end_to_end(workdir, capsys):
    """The issue's check, smaller: tables with the chosen values; a rerun runs nothing."""
    args = ["--model=AnchorMultVAE,AnchorMultVAE[anchor_weight=0],EASE", "--dataset=ml-100k",
            "--seed=1,2", "--tune=2", "--epochs=1", "--output_dir=OUT",
            "--eval_batch_size=2000000", "--state=ERROR"]
    assert main(args) == 0
    out = workdir / "OUT"
    markdown = (out / "comparison.md").read_text()
    assert "same budget, 2 trials" in markdown
    records = {json.load(open(p))["model"]: json.load(open(p)) for p in glob.glob(str(out / "tuning" / "*.json"))}
    assert set(records) == {"AnchorMultVAE", "AnchorMultVAE[anchor_weight=0]", "EASE"}
    assert "anchor_weight" in records["AnchorMultVAE"]["params"]
    assert "anchor_weight" not in records["AnchorMultVAE[anchor_weight=0]"]["params"]
    store = RecordStore(str(out))
    for model, record in records.items():
        assert record["n_complete"] == 2
        for seed in (1, 2):
            assert store.read(model, seed)["params"] == record["params"]
    hyper_rows = list(csv.DictReader(open(out / "hyperparameters.csv")))
    assert {r["model"] for r in hyper_rows} == set(records)
    # Seed 1's run is the chosen trial's (same values, seed and split): not trained
    # again, and what a fresh run of it gives.
    printed = capsys.readouterr().out
    assert printed.count("the same run as tuning trial") == 3
    fresh = runner.run_one("AnchorMultVAE", "ml-100k", 1, None, {},
                           ["--epochs=1", "--eval_batch_size=2000000", "--state=ERROR"],
                           records["AnchorMultVAE"]["params"])
    kept = store.read("AnchorMultVAE", 1)
    for key in ("params", "valid", "test", "test_per_user"):
        assert kept[key] == json.loads(json.dumps(fresh[key])), key
    before = (out / "comparison.csv").read_text()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "running" not in printed and printed.count("tuned before") == 3
    assert (out / "comparison.csv").read_text() == before


def test_tune_outside_a_comparison_is_a_one_line_error(capsys):
    assert main(["--model=EASE", "--dataset=ml-100k", "--tune=3"]) == 2
    assert "give a model list or a seed list" in capsys.readouterr().err
    assert main(["--model=EASE,Pop", "--dataset=ml-100k", "--tune=0"]) == 2
    assert "integer >= 1" in capsys.readouterr().err


def test_processes_sharing_a_storage_and_folder_split_one_comparison(workdir, capsys):
    """The README's recipe: one process per extra seed, the same command otherwise, a
    journal file as --storage and one --output_dir. Together they run each model's
    budget once and each seed once; the command with every seed then trains nothing."""
    import subprocess
    import sys

    import optuna

    from recbole_anchor.tuning.storage import open_storage

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "run_recbole_anchor.py")
    common = ["--model=EASE", "--dataset=ml-100k", "--tune=3", "--storage=OUT/studies.journal",
              "--output_dir=OUT", "--eval_batch_size=2000000", "--state=ERROR"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, script, f"--seed=1,{k}", *common], cwd=workdir,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for k in (2, 3)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="compare-ml-100k-EASE",
                              storage=open_storage(str(workdir / "OUT" / "studies.journal")))
    ran = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert 3 <= len(ran) <= 4  # the budget between them (one more if both finished at once)
    assert [float(t.params["reg_weight"]) for t in ran].count(250.0) == 1
    # Seed 1 is the chosen trial's run, read (by the first) or found done (by the other).
    assert not any("[EASE, seed 1] running" in output for output in outputs)
    assert sum(output.count("[EASE, seed 1] the same run as tuning trial") for output in outputs) >= 1
    assert [output.count("] running") for output in outputs] == [1, 1]  # seeds 2 and 3
    assert main(["--seed=1,2,3", *common]) == 0
    printed = capsys.readouterr().out
    assert "running" not in printed and printed.count("done before, skipped") == 3


def test_tpe_models_the_results_within_small_budgets(tmp_path, monkeypatch):
    """Optuna's TPE draws its first 10 trials at random, so a budget of 8 would be a
    random search; the comparison's search hands over to TPE after half the budget."""
    import optuna

    assert [comparison_tuning.startup_trials(n) for n in (1, 3, 5, 6, 8, 10, 12, 20, 50)] == [
        1, 3, 5, 5, 5, 5, 6, 10, 10]
    samplers = []
    real = optuna_search.make_sampler
    monkeypatch.setattr(optuna_search, "make_sampler",
                        lambda *args: samplers.append(real(*args)) or samplers[-1])
    monkeypatch.setattr(optuna_search, "run_recbole_anchor", FakeRuns())
    _tune(tmp_path, trials=8)
    assert isinstance(samplers[0], optuna.samplers.TPESampler)
    assert samplers[0]._n_startup_trials == 5
