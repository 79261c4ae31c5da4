"""Reproducible runs, unique crash-safe checkpoints, exact resume after SIGKILL, safe
checkpoint loading, divergence errors and concurrent runs (issue 7)."""
import contextlib
import hashlib
import io
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch
from recbole.trainer import trainer as trainer_module

from recbole_anchor.compat import race_free_dirs
from recbole_anchor.compat.weights_only_checkpoints import load_checkpoint
from recbole_anchor.errors import CheckpointError, TrainingDivergedError
from recbole_anchor.model.general_recommender import AnchorMultVAE
from recbole_anchor.quick_start import run_recbole_anchor
from recbole_anchor.trainer import checkpoint, with_training_features

from conftest import make_config
from tiny_dataset import tiny_args, write_tiny_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_recbole_anchor.py")
EPOCHS = 6
BATCHES_PER_EPOCH = 4  # 60 users, train_batch_size 16


@pytest.fixture
def tiny(workdir):
    write_tiny_dataset(workdir / "data")
    return workdir / "data"


#: RecVAE-family settings for the tiny dataset (RecVAE's trainer makes 4 passes per epoch).
TINY_RECVAE = {"hidden_dimension": 32, "latent_dimension": 8}


def run(data_path, epochs=EPOCHS, resume=None, model="AnchorMultVAE", **overrides):
    return run_recbole_anchor(
        model, "tiny", cmd_args=tiny_args(data_path, epochs, state="ERROR", **overrides),
        resume=resume,
    )


def run_files(folder="saved"):
    """Best-model checkpoints (``-last`` excluded) in ``folder``, oldest first."""
    names = sorted(os.listdir(folder), key=lambda name: os.stat(os.path.join(folder, name)).st_mtime_ns)
    return [os.path.join(folder, n) for n in names if n.endswith(".pth") and "-last" not in n]


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(path_a, path_b):
    a, b = weights(path_a), weights(path_b)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def cli(cwd, *args, model="AnchorMultVAE"):
    return subprocess.Popen(
        [sys.executable, SCRIPT, f"--model={model}", "--dataset=tiny", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


# --------------------------------------------------------------- reproducibility
def test_same_config_and_seed_give_identical_metrics_and_weights(tiny):
    first, second = run(tiny), run(tiny)
    assert first == second
    best_a, best_b = run_files()
    assert best_a != best_b
    assert_same_weights(best_a, best_b)
    assert_same_weights(checkpoint.last_checkpoint_path(best_a),
                        checkpoint.last_checkpoint_path(best_b))


def test_rng_state_round_trip_repeats_every_generator():
    generator = torch.Generator().manual_seed(3)
    buffer = io.BytesIO()
    torch.save(checkpoint.capture_rng({"loader": generator}), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    draws = (random.random(), np.random.rand(), torch.rand(1), torch.randperm(9, generator=generator))
    random.seed(99), np.random.seed(99), torch.manual_seed(99), generator.manual_seed(99)
    assert checkpoint.restore_rng(state, {"loader": generator, "other": torch.Generator()}) == [
        "other"
    ]
    again = (random.random(), np.random.rand(), torch.rand(1), torch.randperm(9, generator=generator))
    assert draws[:2] == again[:2]
    assert torch.equal(draws[2], again[2]) and torch.equal(draws[3], again[3])


# ------------------------------------------------------------------- checkpoints
def test_checkpoints_are_per_run_weights_only_and_hold_the_training_state(tiny, monkeypatch):
    # Two trainers created in the same second get different files.
    monkeypatch.setattr(checkpoint, "get_local_time", lambda: "Jan-01-2026_00-00-00")
    run(tiny, epochs=2)
    run(tiny, epochs=2)
    files = sorted(os.listdir("saved"))
    assert len(files) == 4 and len({name[:-len("-last.pth")] for name in files if "-last" in name}) == 2
    best = run_files()[0]
    last = torch.load(checkpoint.last_checkpoint_path(best), weights_only=True)
    assert last["epoch"] == 1 and last["run_file"] == os.path.basename(best)
    assert int(last["state_dict"]["step"]) == 2 * BATCHES_PER_EPOCH  # anneal step
    assert last["optimizer"]["state"] and last["best_valid_result"]
    assert set(last["rng_state"]) >= {"python", "numpy", "torch", "cuda", "generators"}
    assert "train_data" in last["rng_state"]["generators"]
    # one validation score per evaluated epoch, for the trend-aware stopping rule
    assert len(last["valid_score_history"]) == 2
    assert last["valid_score_history"][-1] <= last["best_valid_score"]
    assert not [name for name in os.listdir("saved") if name.endswith(".tmp")]


def test_resume_without_generator_states_would_differ(tiny):
    """The generator states matter: resuming with them dropped changes the weights."""
    run(tiny, epochs=3)
    best = run_files()[0]
    last_file = checkpoint.last_checkpoint_path(best)
    state = torch.load(last_file, weights_only=True)
    resume_exact = run(tiny, resume=last_file)
    exact = weights(last_file)
    state.pop("rng_state")
    torch.save(state, last_file)
    run(tiny, resume=last_file)
    assert resume_exact["test_result"]
    assert any(not torch.equal(exact[k], v) for k, v in weights(last_file).items())


# ------------------------------------------------------------- kill and resume
CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from recbole_anchor.registry import get_model
    from recbole_anchor.cli import main

    model_class = get_model({model!r})
    original = model_class.calculate_loss
    calls = [0]

    def calculate_loss(self, interaction, *args, **kwargs):
        calls[0] += 1
        if calls[0] == {stop_call}:
            open("stopped", "w").close()
            time.sleep(600)  # the parent kills us here, mid-epoch
        return original(self, interaction, *args, **kwargs)

    model_class.calculate_loss = calculate_loss
    sys.exit(main(sys.argv[1:]))
    """
)

#: model -> (extra settings, training steps per epoch): RecVAE's trainer runs
#: n_enc_epochs (3) encoder passes and one decoder pass over the users per epoch.
KILLED_RUNS = {
    "AnchorMultVAE": ({}, BATCHES_PER_EPOCH),
    "RecVAE": (TINY_RECVAE, 4 * BATCHES_PER_EPOCH),
    "AnchorRecVAE": (TINY_RECVAE, 4 * BATCHES_PER_EPOCH),
}


@pytest.mark.parametrize("model", sorted(KILLED_RUNS))
def test_run_killed_mid_training_resumes_to_the_same_final_metrics(tiny, model):
    """SIGKILL in the middle of an epoch, resume from ``-last.pth``: the same metrics and
    bit-identical weights as a run never stopped (RecVAE's trainer: both its phase
    optimizers are saved and restored)."""
    settings, steps_per_epoch = KILLED_RUNS[model]
    uninterrupted = run(tiny, model=model, **settings)
    reference = run_files()[0]

    kill_epoch = 3
    args = [*tiny_args(tiny, EPOCHS), *[f"--{k}={v}" for k, v in settings.items()]]
    child = subprocess.Popen(
        [sys.executable, "-c",
         CHILD.format(repo=REPO, model=model, stop_call=kill_epoch * steps_per_epoch + 3),
         f"--model={model}", "--dataset=tiny", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 300  # a guard against a hang, not a timing check
    while not os.path.exists("stopped"):
        assert child.poll() is None, child.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "child never reached the kill point"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL

    killed = [path for path in run_files() if path != reference]
    assert len(killed) == 1
    last_file = checkpoint.last_checkpoint_path(killed[0])
    assert torch.load(last_file, weights_only=True)["epoch"] == kill_epoch - 1

    resumed = cli(tiny.parent, *args, f"--resume={last_file}", model=model)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    expected = f"{uninterrupted['test_result']['ndcg@10']:.4f}"
    assert "ndcg@10" in out and expected in out
    # The resumed run kept writing the killed run's files: same weights as never stopped.
    assert_same_weights(killed[0], reference)
    assert_same_weights(last_file, checkpoint.last_checkpoint_path(reference))
    state = torch.load(last_file, weights_only=True)
    assert state["epoch"] == EPOCHS - 1
    assert state["best_valid_result"] == uninterrupted["best_valid_result"]


def test_resume_in_process_repeats_the_uninterrupted_run_exactly(tiny):
    uninterrupted = run(tiny)
    run(tiny, epochs=2)  # a run that stopped after two epochs
    stopped = run_files()[1]
    resumed = run(tiny, resume=checkpoint.last_checkpoint_path(stopped))
    assert resumed == uninterrupted


# ----------------------------------------------------------------- safe loading
class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the plain-pickle file
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_checkpoint_that_runs_code_on_load_is_refused(workdir, writer):
    marker, evil = workdir / "pwned", workdir / "evil.pth"
    payload = {"state_dict": {}, "config": RunsCode(marker)}
    if writer == "torch":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="--trust-checkpoint") as err:
        load_checkpoint(evil)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_cli_refuses_a_code_running_checkpoint_in_one_line(tiny):
    marker, evil = tiny.parent / "pwned", tiny.parent / "evil.pth"
    torch.save({"state_dict": {}, "config": RunsCode(marker)}, evil)
    result = cli(tiny.parent, *tiny_args(tiny), f"--resume={evil}")
    _, err = result.communicate(timeout=600)
    assert result.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--trust-checkpoint" in lines[0], err
    assert not marker.exists()


def test_recbole_style_checkpoint_resumes_only_when_trusted(tiny):
    run(tiny, epochs=1)
    state = torch.load(run_files()[0], weights_only=True)
    recbole_keys = ("epoch", "cur_step", "best_valid_score", "state_dict", "other_parameter",
                    "optimizer")
    legacy = tiny.parent / "legacy.pth"
    # As RecBole writes them: a pickled Config object, no generator states.
    torch.save({**{k: state[k] for k in recbole_keys}, "config": make_config("AnchorMultVAE")},
               legacy)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        run(tiny, epochs=2, resume=str(legacy))
    result = run_recbole_anchor(
        "AnchorMultVAE", "tiny", cmd_args=tiny_args(tiny, 2, state="ERROR"),
        resume=str(legacy), trust_checkpoint=True,
    )
    assert result["test_result"]


# ------------------------------------------------------------------- divergence
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_loss_stops_with_one_line_and_keeps_the_last_checkpoint(tiny, monkeypatch, bad):
    original = AnchorMultVAE.calculate_loss
    seen = {}

    def calculate_loss(self, interaction):
        nll, kl, anchor = original(self, interaction)
        if int(self.step) == 2 * BATCHES_PER_EPOCH + 2:  # epoch 2, its second batch
            (last,) = [p for p in os.listdir("saved") if p.endswith("-last.pth")]
            seen["last"] = os.path.join("saved", last)
            seen["digest"] = digest(seen["last"])
            nll = nll * bad
        return nll, kl, anchor

    monkeypatch.setattr(AnchorMultVAE, "calculate_loss", calculate_loss)
    with pytest.raises(TrainingDivergedError) as err:
        run(tiny)
    message = str(err.value)
    assert "\n" not in message
    assert "epoch 2, step 9 (batch 1 of the epoch)" in message
    assert ("NaN" if bad != bad else "Inf") in message and seen["last"] in message
    assert digest(seen["last"]) == seen["digest"]
    kept = torch.load(seen["last"], weights_only=True)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["state_dict"].values() if t.is_floating_point())


def test_non_finite_weights_are_never_saved(workdir):
    config = make_config("AnchorMultVAE", epochs=1)
    from conftest import prepare

    _, (train_data, _, _) = prepare(config)
    model = AnchorMultVAE(config, train_data._dataset)
    trainer = with_training_features(trainer_module.Trainer)(config, model)
    trainer._save_checkpoint(0)
    before = digest(trainer.saved_model_file)
    with torch.no_grad():
        model.decoder[0].weight[0, 0] = float("nan")
    with pytest.raises(TrainingDivergedError, match="not finite"):
        trainer._save_checkpoint(1)
    assert digest(trainer.saved_model_file) == before


# ------------------------------------------------------------------ concurrency
def test_two_runs_at_once_keep_separate_intact_checkpoints_and_results(tiny):
    runs = [cli(tiny.parent, *tiny_args(tiny, 3)) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in runs]
    for process, (out, err) in zip(runs, outputs):
        assert process.returncode == 0, err[-3000:]
        assert "test result (AnchorMultVAE on tiny):" in out
    assert outputs[0][0] == outputs[1][0]  # same seed, same numbers
    best = run_files()
    assert len(best) == 2 and len(os.listdir("saved")) == 4
    for path in best + [checkpoint.last_checkpoint_path(p) for p in best]:
        assert torch.load(path, weights_only=True)["epoch"] >= 0
    assert_same_weights(*best)


def test_folders_are_created_safely_by_concurrent_runs(tmp_path):
    from recbole.utils import logger as recbole_logger

    assert trainer_module.ensure_dir is race_free_dirs.ensure_dir
    assert recbole_logger.ensure_dir is race_free_dirs.ensure_dir
    target = str(tmp_path / "a" / "b")
    errors = []

    def make():
        try:
            trainer_module.ensure_dir(target)
        except OSError as err:
            errors.append(err)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and os.path.isdir(target)


def test_a_checkpoint_that_cannot_be_written_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    """A full disk (torch says only "unexpected pos ...") stops the run with the file,
    the space left and the fix; the checkpoint written before stays whole."""
    path = tmp_path / "model.pth"
    checkpoint.atomic_save({"epoch": 1}, path)

    def full_disk(obj, handle):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 25792 vs 25688")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(CheckpointError) as err:
        checkpoint.atomic_save({"epoch": 2}, path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "unexpected pos" in message and "MiB free" in message and "checkpoint_dir" in message
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["model.pth"]  # no temporary file left


def test_kill_during_a_checkpoint_write_stops_the_run_after_the_write(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside torch's checkpoint writer comes out of its C++
    code as "RuntimeError: unexpected pos", which made a killed tuning trial a failed
    one and the worker go on. The signal now waits for the write: the checkpoint is
    whole, then the run stops as interrupted."""
    from recbole_anchor.stop_signals import stop_on_signals

    real_open = checkpoint.atomic_open

    class KilledMidWrite(io.RawIOBase):
        def __init__(self, handle):
            self.handle, self.sent = handle, False

        def writable(self):
            return True

        def write(self, data):
            if not self.sent:  # the signal arrives while torch writes
                self.sent = True
                os.kill(os.getpid(), signal.SIGTERM)
            return self.handle.write(data)

        def flush(self):
            self.handle.flush()

    @contextlib.contextmanager
    def opened(path, mode="w", **kwargs):
        with real_open(path, mode, **kwargs) as handle:
            yield KilledMidWrite(handle)

    monkeypatch.setattr(checkpoint, "atomic_open", opened)
    state = {"weights": torch.arange(100_000.0)}
    with stop_on_signals(), pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_save(state, tmp_path / "model.pth")
    assert torch.equal(torch.load(tmp_path / "model.pth", weights_only=True)["weights"],
                       state["weights"])
