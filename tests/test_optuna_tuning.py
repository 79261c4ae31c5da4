"""Tuning on Optuna: exact search spaces, validation-only selection, pruning, and real
worker processes sharing one study through a SQLite file, a journal file and (when
RECBOLE_ANCHOR_TEST_POSTGRES holds a URL) a PostgreSQL server."""
import csv
import math
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

import recbole_anchor.tuning.optuna_search as optuna_search
from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.resources import properties_dir
from recbole_anchor.tuning.cli import main
from recbole_anchor.tuning.optuna_search import _pruning_callback, run_study
from recbole_anchor.tuning.space import (
    config_values,
    optuna_space,
    read_params_file,
    suggest,
    without_keys,
)
from recbole_anchor.tuning.storage import open_storage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_hyper_anchor.py")
POSTGRES = os.environ.get("RECBOLE_ANCHOR_TEST_POSTGRES")
SMALL = {"model": "AnchorMultVAE", "dataset": "ml-100k", "mlp_hidden_size": [32],
         "show_progress": False, "state": "ERROR", "eval_batch_size": 2_000_000}
SPACE = "learning_rate loguniform -7,-4\nmlp_hidden_size choice [[32],[16,16]]\n"


def storages():
    kinds = [pytest.param("sqlite", id="sqlite"), pytest.param("journal", id="journal")]
    kinds.append(pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
        not POSTGRES, reason="no PostgreSQL server: set RECBOLE_ANCHOR_TEST_POSTGRES to a URL "
        "(.ci/run starts one)")))
    return kinds


def storage_url(kind, folder):
    if kind == "sqlite":
        return f"sqlite:///{folder / 'study.db'}"
    if kind == "journal":
        return str(folder / "study.journal")
    return POSTGRES


def load(study_name, storage):
    return optuna.load_study(study_name=study_name, storage=open_storage(storage))


# --- search spaces -------------------------------------------------------------------

def test_hyper_lines_map_to_exact_optuna_distributions(tmp_path):
    path = tmp_path / "space.hyper"
    path.write_text(
        "# comment\n"
        "anchor_weight loguniform -6.907755,0\n"
        "dropout_prob uniform 0.1,0.7\n"
        "anneal_cap quniform 0.1,0.5,0.1\n"
        "embedding_size quniform 16,128,16\n"
        "mlp_hidden_size choice [[600],[300,300],[]]\n"
        "learning_rate choice [0.01,0.001]\n"
    )
    space = {p.name: p for p in optuna_space(read_params_file(str(path)))}
    log = space["anchor_weight"].distribution
    assert log == FloatDistribution(math.exp(-6.907755), 1.0, log=True)  # natural log
    assert log.low == math.exp(-6.907755) and log.high == math.exp(0.0)
    assert space["dropout_prob"].distribution == FloatDistribution(0.1, 0.7)
    assert space["anneal_cap"].distribution == FloatDistribution(0.1, 0.5, step=0.1)
    assert space["embedding_size"].distribution == FloatDistribution(16, 128, step=16)
    assert space["learning_rate"].distribution == CategoricalDistribution([0.01, 0.001])
    lists = space["mlp_hidden_size"]
    assert lists.distribution == CategoricalDistribution(["[600]", "[300, 300]", "[]"])
    assert lists.value("[300, 300]") == [300, 300]

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(20):
        trial = study.ask()
        values = suggest(trial, list(space.values()))
        assert values["mlp_hidden_size"] in ([600], [300, 300], [])
        assert isinstance(values["embedding_size"], int) and values["embedding_size"] % 16 == 0
        assert 0.001 <= values["anchor_weight"] <= 1.0
        assert config_values(list(space.values()), trial.params) == values
        seen.append(values["mlp_hidden_size"])
        study.tell(trial, 0.0)
    assert len({repr(v) for v in seen}) == 3


def test_shipped_spaces_have_the_documented_bounds():
    folder = os.path.join(properties_dir(), "hyper")
    space = {p.name: p.distribution
             for p in optuna_space(read_params_file(os.path.join(folder, "AnchorMultVAE.hyper")))}
    assert space["anchor_weight"].low == pytest.approx(1e-3, rel=1e-6)
    assert space["anchor_weight"].high == pytest.approx(3.0, rel=1e-6) and space["anchor_weight"].log
    rate = space["learning_rate"]
    assert (rate.low, rate.high) == pytest.approx((1e-4, 1e-2), rel=1e-5)


@pytest.mark.parametrize("line,message", [
    ("lr quniform 0.1,0.5,0.3", "multiple of q"),
    ("lr uniform 0.5,0.1", "low < high"),
    ("lr choice [0.1,0.1]", "twice"),
    ("lr choice 0.1", "non-empty list"),
    ("lr loguniform -1", "low,high"),
])
def test_bad_space_lines_are_one_line_errors(tmp_path, line, message):
    path = tmp_path / "space.hyper"
    path.write_text(line + "\n")
    with pytest.raises(InvalidConfigError, match=message):
        optuna_space(read_params_file(str(path)))


def test_without_keys_drops_what_a_variant_fixes():
    params = [("anchor_weight", "loguniform", "-6,0"), ("dropout_prob", "uniform", "0.1,0.7")]
    assert without_keys(params, {"anchor_weight": 0}) == [("dropout_prob", "uniform", "0.1,0.7")]


# --- objective, failures, pruning ----------------------------------------------------

@pytest.mark.parametrize("bigger", [True, False])
def test_the_objective_is_the_validation_score_never_the_test_score(workdir, monkeypatch, bigger):
    """Validation prefers 0.01 (maximizing) or 0.0001 (minimizing), test the opposite;
    the configuration that raises is recorded as failed and the study goes on."""
    valid = {0.01: 0.3, 0.001: 0.2, 0.0001: 0.1}
    test = {0.01: 0.1, 0.001: 0.2, 0.0001: 0.3}

    def fake_run(config_dict, callback_fn=None, **kwargs):
        lr = config_dict["learning_rate"]
        if lr == 0.5:
            raise RuntimeError("loss is nan\nsecond line")
        if callback_fn is not None:
            callback_fn(0, valid[lr])
        return {"best_valid_score": valid[lr], "best_valid_result": {"ndcg@100": valid[lr]},
                "test_result": {"ndcg@100": test[lr]}}

    monkeypatch.setattr(optuna_search, "run_recbole_anchor", fake_run)
    if not bigger:  # a metric where smaller is better (RecBole derives it from valid_metric)
        smaller = {"valid_metric": "MAE", "valid_metric_bigger": False, "epochs": 1}
        monkeypatch.setattr(optuna_search, "_fixed_settings", lambda fixed, files: smaller)
    lines = []
    result = run_study(
        SMALL,
        [("learning_rate", "choice", "[0.01,0.001,0.0001,0.5]")], 4,
        study_name="v", sampler="grid", pruner="none", seed=1, output_base="out/v",
        progress=lines.append,
    )
    chosen = 0.01 if bigger else 0.0001
    assert result["best_params"] == {"learning_rate": chosen}
    assert result["best_valid_score"] == valid[chosen]
    assert result["best_test_result"] == {"ndcg@100": test[chosen]}
    assert (result["n_complete"], result["n_failed"]) == (3, 1)
    assert result["storage"] == f"sqlite:///{workdir / 'out' / 'v.db'}"  # the default storage
    rows = list(csv.DictReader(open(workdir / "out" / "v.trials.csv")))
    failed = [r for r in rows if r["state"] == "fail"]
    assert len(rows) == 4 and failed[0]["reason"] == "RuntimeError: loss is nan"
    assert any("fail" in line and "RuntimeError: loss is nan" in line for line in lines)
    best = yaml.safe_load(open(workdir / "out" / "v.best.yaml"))
    assert best["best_params"] == {"learning_rate": chosen}
    assert (workdir / "out" / "v.history.png").stat().st_size > 0
    assert (workdir / "out" / "v.importances.png").stat().st_size > 0
    assert "learning_rate:" + str(chosen) in open(workdir / "out" / "v.result").read()


def test_the_last_epoch_is_never_pruned():
    class AlwaysPrune:
        reported = []

        def report(self, value, step):
            self.reported.append(step)

        def should_prune(self):
            return True

        def set_user_attr(self, key, value):
            pass

    callback = _pruning_callback(AlwaysPrune(), epochs=3)
    with pytest.raises(optuna.TrialPruned):
        callback(1, 0.2)
    callback(2, 0.2)  # the last epoch: reported, not pruned
    assert AlwaysPrune.reported == [1, 2]


def test_a_clearly_worse_configuration_is_pruned_before_its_last_epoch(workdir):
    storage = f"sqlite:///{workdir / 'p.db'}"
    study = optuna.create_study(study_name="p", storage=storage, direction="maximize")
    study.enqueue_trial({"learning_rate": 0.01})
    study.enqueue_trial({"learning_rate": 1e-7})  # learns nothing in 4 epochs
    result = run_study(
        {**SMALL, "epochs": 4, "train_batch_size": 64},
        [("learning_rate", "choice", "[0.01,1e-7]")], 2,
        study_name="p", storage=storage, sampler="random",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1), output_base="out/p",
        progress=lambda line: None,
    )
    good, bad = load("p", storage).trials
    assert good.state == TrialState.COMPLETE and sorted(good.intermediate_values) == [0, 1, 2, 3]
    assert bad.state == TrialState.PRUNED and max(bad.intermediate_values) < 3
    assert (result["n_complete"], result["n_pruned"]) == (1, 1)
    assert result["best_params"] == {"learning_rate": 0.01}


def test_grid_sampler_refuses_continuous_parameters_in_one_line(workdir, capsys):
    (workdir / "space.hyper").write_text(SPACE)
    status = main(["--model=AnchorMultVAE", "--dataset=ml-100k", "--params_file=space.hyper",
                   "--sampler=grid", "--output_file=out/g.result"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "learning_rate" in err[0] and "--sampler=tpe" in err[0]


# --- real workers, real storages -----------------------------------------------------

def start_worker(folder, storage, study_name, n_trials, *extra, preexec_fn=None):
    (folder / "space.hyper").write_text(SPACE)
    command = [
        sys.executable, SCRIPT, "--tool=optuna", "--model=AnchorMultVAE", "--dataset=ml-100k",
        "--params_file=space.hyper", f"--n_trials={n_trials}", "--epochs=3",
        f"--storage={storage}", f"--study_name={study_name}", "--output_file=out/hyper.result",
        "--mlp_hidden_size=[32]", "--eval_batch_size=2000000", "--show_progress=False",
        "--state=ERROR", *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=preexec_fn)


def finish(process, timeout=900):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


@pytest.mark.parametrize("kind", storages())
def test_two_workers_started_at_once_share_one_study(tmp_path, kind):
    storage, name = storage_url(kind, tmp_path), f"two-{uuid.uuid4().hex[:8]}"
    workers = [start_worker(tmp_path, storage, name, 2) for _ in range(2)]
    for worker in workers:
        status, output = finish(worker)
        assert status == 0, output[-3000:]
        assert sum(line.startswith("trial ") for line in output.splitlines()) == 2
    trials = load(name, storage).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    rows = list(csv.DictReader(open(tmp_path / "out" / "hyper.trials.csv")))
    assert sorted(int(r["number"]) for r in rows) == [0, 1, 2, 3]
    best = yaml.safe_load(open(tmp_path / "out" / "hyper.best.yaml"))
    assert best["best_valid_score"] == max(t.value for t in trials)
    assert best["best_params"]["mlp_hidden_size"] in ([32], [16, 16])
    for picture in ("history", "importances"):
        assert (tmp_path / "out" / f"hyper.{picture}.png").stat().st_size > 0
    if kind == "sqlite":  # running the command again adds trials to the same study
        status, output = finish(start_worker(tmp_path, storage, name, 1))
        assert status == 0, output[-3000:]
        assert "4 trials so far" in output
        assert sorted(t.number for t in load(name, storage).trials) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["kill", "kill-INT"])
def test_kill_stops_a_background_worker_as_ctrl_c_does(tmp_path, signum):
    """``kill`` (SIGTERM) and ``kill -INT`` of a worker started as a shell's background
    job (SIGINT ignored) record the running trial as interrupted and exit 130, as
    Ctrl-C does: no trial is left RUNNING for a heartbeat to time out."""
    storage, name = storage_url("sqlite", tmp_path), f"stop-{uuid.uuid4().hex[:8]}"
    (tmp_path / "space.hyper").write_text(SPACE)
    worker = start_worker(tmp_path, storage, name, 10, "--epochs=200",
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    stopped, deadline = None, time.monotonic() + 600
    while stopped is None and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
        try:
            running = load(name, storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        if running and running[0].intermediate_values:  # between two epochs
            worker.send_signal(signum)
            stopped = running[0]
    status, output = finish(worker)
    assert stopped is not None, output[-3000:]
    assert status == 130, output[-3000:]
    assert "interrupted" in output
    trial = load(name, storage).trials[stopped.number]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "interrupted"


@pytest.mark.parametrize("kind", storages())
def test_a_killed_workers_trial_is_failed_and_retried_by_the_other(tmp_path, kind):
    storage, name = storage_url(kind, tmp_path), f"kill-{uuid.uuid4().hex[:8]}"
    beats = ("--heartbeat_interval=1", "--grace_period=2")
    doomed = start_worker(tmp_path, storage, name, 10, *beats)
    survivor = start_worker(tmp_path, storage, name, 4, *beats)
    killed, deadline = None, time.monotonic() + 600
    while killed is None and time.monotonic() < deadline and doomed.poll() is None:
        time.sleep(0.2)
        try:
            running = load(name, storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        for trial in running:  # a trial of the doomed worker, between two epochs
            if trial.user_attrs.get("worker", "").endswith(f":{doomed.pid}") and (
                trial.intermediate_values
            ):
                doomed.send_signal(signal.SIGKILL)
                killed = trial
                break
    doomed.communicate()
    assert killed is not None, "the doomed worker never ran a trial"
    status, output = finish(survivor)
    assert status == 0, output[-3000:]
    assert f"trial {killed.number} fail: its worker stopped sending heartbeats" in output
    trials = load(name, storage).trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert trials[killed.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state == TrialState.COMPLETE
    assert all(t.state != TrialState.RUNNING for t in trials)
