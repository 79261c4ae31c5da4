"""How a run is checkpointed and resumed: everything in one module.

A plugin trainer (:mod:`recbole_anchor.trainer.features`) writes two checkpoints per
run, in the weights-only format of :mod:`recbole_anchor.compat.weights_only_checkpoints`
(tensors and plain data only):

- ``<Model>-<time>-<8 random hex digits>.pth``: the best model so far (RecBole's name
  plus a random part from the OS, so runs started in the same second never share a
  file);
- ``...-last.pth``: the end of the last finished epoch (training, validation and the
  stopping bookkeeping done), written at the start of the next epoch and at the end.

Both hold what RecBole saves (config, epoch, ``cur_step``, best validation score,
weights, ``other_parameter``, ``optimizer``) plus:

- ``optimizers``: every torch optimizer the trainer holds, by attribute name (RecVAE's
  trainer alternates ``optimizer_encoder`` and ``optimizer_decoder``, and its
  ``optimizer`` is whichever phase ran last: ``optimizer_alias`` names it);
- ``best_valid_result`` and ``valid_score_history`` (the validation scores so far, which
  the trend stopping rule reads);
- ``rng_state``: Python's, numpy's, torch's CPU and CUDA generators and the training
  loader's shuffling generator, captured at the end of the epoch, so a resumed run
  draws exactly the numbers an uninterrupted one would;
- ``run_file``: the file name of the run's best-model checkpoint, which a resumed run
  keeps writing.

Resuming (``run_recbole_anchor(resume=...)``, ``--resume``): the checkpoint is loaded,
:func:`restore_trainer_state` puts weights, optimizers and progress back, and the
generators are restored at the start of the next epoch (:func:`start_epoch`), where
they were captured. Files are written atomically (:func:`atomic_open`): to a temporary
file in the same folder, flushed to disk, then renamed over the target, so a crash
never leaves a half-written file. Weights that are not finite are never saved.
"""
import contextlib
import os
import random
import secrets
import shutil
import tempfile
from collections import OrderedDict

import numpy as np
import torch
from recbole.utils import get_local_time

from recbole_anchor.compat.weights_only_checkpoints import (
    encode_plain,
    load_weights,
    recbole_state,
)
from recbole_anchor.errors import CheckpointError, TrainingDivergedError
from recbole_anchor.stop_signals import held_during


# --- atomic writes -----------------------------------------------------------------

@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file for writing; on leaving the block without an error it is
    fsynced and renamed to ``path``, on an error it is removed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
    )
    os.chmod(tmp_path, 0o666 & ~_umask())  # as open() would create it (mkstemp: 0600)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj, path):
    """``torch.save`` to ``path`` through a temporary file, fsync and rename. Ctrl-C or
    ``kill`` during the write take effect once it is done (inside torch's writer they
    would turn into a RuntimeError); a write that fails (a full disk: torch says only
    "unexpected pos") is a one-line :class:`CheckpointError` with the space left."""
    try:
        with held_during(), atomic_open(path, "wb") as handle:
            torch.save(obj, handle)
    except (OSError, RuntimeError) as err:
        folder = os.path.dirname(os.path.abspath(path))
        free = shutil.disk_usage(folder).free / 2**20 if os.path.isdir(folder) else 0
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(
            f"could not write checkpoint '{path}' ({reason}); {free:.0f} MiB free in "
            f"{folder}: free space there or set checkpoint_dir to another folder"
        ) from None


# --- random generators -------------------------------------------------------------
# A run draws from Python's ``random``, numpy's global generator (RecBole's negative
# samplers), torch's CPU generator (dropout, the reparameterization noise), each CUDA
# device's generator, and the ``torch.Generator`` each RecBole dataloader shuffles with.
# States are plain data (tensors, ints, lists), loadable with ``weights_only=True``.

def capture_rng(generators=None):
    """The global generators' states, and those of ``generators`` (name -> Generator)."""
    version, internal, gauss_next = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {
            name: generator.get_state() for name, generator in (generators or {}).items()
        },
    }
    return state


def restore_rng(state, generators=None):
    """Put the states from :func:`capture_rng` back; returns the names in ``generators``
    that the saved state did not cover."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {
                "key": numpy_state["key"].cpu().numpy().astype(np.uint32),
                "pos": numpy_state["pos"],
            },
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        for device, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device)
    saved = state.get("generators") or {}
    missing = []
    for name, generator in (generators or {}).items():
        if name in saved:
            generator.set_state(saved[name].cpu())
        else:
            missing.append(name)
    return missing


# --- file names --------------------------------------------------------------------

def unique_checkpoint_path(folder, model):
    """``folder/<model>-<local time>-<8 random hex digits>.pth``: RecBole's name plus a
    random part, so runs started in the same second never share a file. The random
    part comes from the OS, not from the seeded generators."""
    while True:
        path = os.path.join(folder, f"{model}-{get_local_time()}-{secrets.token_hex(4)}.pth")
        if not os.path.exists(path):
            return path


def last_checkpoint_path(path):
    """The end-of-epoch checkpoint that goes with the best-model checkpoint ``path``."""
    stem, ext = os.path.splitext(path)
    return f"{stem}-last{ext or '.pth'}"


def training_generators(trainer):
    """The ``torch.Generator`` the trainer's training loader shuffles with, by name."""
    train_data = getattr(trainer, "train_data", None)
    generator = getattr(train_data, "generator", None)
    return {"train_data": generator} if isinstance(generator, torch.Generator) else {}


def check_finite_weights(trainer, epoch):
    """Refuse to save weights that are NaN or Inf, so a good checkpoint is never
    overwritten by a diverged model."""
    for name, tensor in trainer.model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingDivergedError(
                f"training diverged: parameter '{name}' is not finite after epoch "
                f"{epoch}; nothing was saved, the last good checkpoint is kept; lower "
                "learning_rate or set clip_grad_norm"
            )


def optimizers_of(trainer):
    """``({name: optimizer}, alias)``: each distinct torch optimizer the trainer holds,
    by attribute, and the name of the attribute ``trainer.optimizer`` is the same
    object as (RecVAE's phases), or None."""
    named = {n: v for n, v in vars(trainer).items() if isinstance(v, torch.optim.Optimizer)}
    current = named.get("optimizer")
    alias = next(
        (n for n, v in named.items() if n != "optimizer" and v is current), None
    )
    if alias is not None:
        del named["optimizer"]
    return named, alias


def save_trainer_checkpoint(trainer, epoch, path):
    """Write the trainer's whole state (see the module docstring) to ``path``."""
    check_finite_weights(trainer, epoch)
    optimizers, alias = optimizers_of(trainer)
    best_valid_result = getattr(trainer, "best_valid_result", None)
    state = recbole_state(trainer, epoch)
    state.update(
        optimizers={name: optimizer.state_dict() for name, optimizer in optimizers.items()},
        optimizer_alias=alias,
        best_valid_result=encode_plain(dict(best_valid_result or {})) or None,
        valid_score_history=list(getattr(trainer, "valid_score_history", [])),
        rng_state=capture_rng(training_generators(trainer)),
        run_file=os.path.basename(trainer.saved_model_file),
    )
    atomic_save(state, path)


def _load_optimizers(trainer, state):
    saved = state.get("optimizers")
    if saved is None:  # written by plain RecBole: one optimizer
        trainer.optimizer.load_state_dict(state["optimizer"])
        return
    for name, optimizer_state in saved.items():
        getattr(trainer, name).load_state_dict(optimizer_state)
    if state.get("optimizer_alias"):
        trainer.optimizer = getattr(trainer, state["optimizer_alias"])


def restore_trainer_state(trainer, state, path=None):
    """Put a loaded checkpoint's model, optimizer and progress into a trainer.

    The random generators are restored when training continues (the trainer's next
    epoch), where they were captured. With ``path`` (the file resumed from), the
    trainer keeps writing the run's checkpoints next to it; a checkpoint written by
    plain RecBole is instead kept as is, and this run's files start from a copy of it.
    """
    trainer.start_epoch = state["epoch"] + 1
    trainer.cur_step = state["cur_step"]
    trainer.best_valid_score = state["best_valid_score"]
    # the trend stopping rule (trainer.stopping) reads the validation scores so far
    trainer.valid_score_history = list(state.get("valid_score_history") or [])
    best_valid_result = state.get("best_valid_result")
    trainer.best_valid_result = OrderedDict(best_valid_result) if best_valid_result else None
    saved_model = (state.get("config") or {}).get("model", "")
    if saved_model.lower() != trainer.config["model"].lower():
        trainer.logger.warning(
            f"checkpoint was written by model {saved_model}, not "
            f"{trainer.config['model']}; loading its weights may fail"
        )
    where = f"checkpoint '{path}'" if path else "the checkpoint"
    try:
        load_weights(trainer.model, state)
        _load_optimizers(trainer, state)
    except (RuntimeError, ValueError, KeyError, AttributeError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(
            f"{where} does not fit model {trainer.config['model']} with this config "
            f"({first_line}); resume with the model and hyperparameters it was trained with"
        ) from None
    trainer.resume_rng_state = state.get("rng_state")
    if trainer.resume_rng_state is None:
        trainer.logger.warning(
            f"{where} holds no random generator states; the resumed run will not "
            "repeat the numbers of an uninterrupted one"
        )
    if path is not None:
        run_file = state.get("run_file")
        if run_file is None:
            # Written by plain RecBole: leave that file alone and keep its model, in
            # the safe format, as this run's best-model checkpoint.
            save_trainer_checkpoint(trainer, state["epoch"], trainer.saved_model_file)
            return
        best = os.path.join(os.path.dirname(os.path.abspath(path)), run_file)
        if not os.path.isfile(best):
            raise CheckpointError(
                f"the run's best-model checkpoint {best} is missing; resuming from "
                f"'{path}' needs it in the same folder"
            )
        trainer.saved_model_file = best


# --- the epoch boundary --------------------------------------------------------------


def save_last_checkpoint(trainer, epoch):
    """Write ``<run>-last.pth`` for the finished ``epoch`` (process 0 only)."""
    if not trainer.config["single_spec"] and trainer.config["local_rank"] != 0:
        return
    save_trainer_checkpoint(trainer, epoch, last_checkpoint_path(trainer.saved_model_file))


def start_epoch(trainer, train_data, epoch_idx):
    """Before epoch ``epoch_idx``: checkpoint the finished one, or, first thing after
    a resume, restore the random generators saved with the checkpoint."""
    finished = getattr(trainer, "epoch_in_progress", None)
    if finished is not None and getattr(trainer, "save_last", False):
        save_last_checkpoint(trainer, finished)
    saved_rng = getattr(trainer, "resume_rng_state", None)
    if saved_rng is not None:
        missing = restore_rng(saved_rng, {"train_data": train_data.generator})
        if missing:
            trainer.logger.warning(
                "the checkpoint holds no state for the training loader's shuffling; "
                "the resumed run will shuffle differently from an uninterrupted one"
            )
        trainer.resume_rng_state = None
    trainer.epoch_in_progress, trainer.batch_in_epoch = epoch_idx, 0


def last_good_checkpoint(trainer):
    """The newest checkpoint of the run that exists (``-last``, else the best), or None."""
    for path in (last_checkpoint_path(trainer.saved_model_file), trainer.saved_model_file):
        if os.path.isfile(path):
            return path
    return None
