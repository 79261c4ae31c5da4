"""Checkpoints that load with ``torch.load(..., weights_only=True)``.

RecBole pickles its whole Config object into every checkpoint, which torch >= 2.6
refuses to load by default and which would run code from the file if allowed. Here
a checkpoint holds only tensors and plain data:

- ``config``: the final config dict, with RecBole's enums, ``torch.device`` and tuples
  written as small tagged dicts (``{"__enum__": "ModelType", "name": "GENERAL"}``);
- ``other_parameter``: numpy arrays and scipy sparse matrices (EASE, ItemKNN, ...)
  written as tensors;
- ``epoch``, ``cur_step``, ``best_valid_score``, ``best_valid_result``,
  ``valid_score_history`` (the validation scores so far, for the stopping rule),
  ``state_dict`` (AnchorMultVAE's anneal ``step`` is a buffer in it), ``optimizer``;
- ``rng_state``: every random generator the run draws from (:mod:`rng_state`), the
  training loader's shuffling generator included, so a resumed run continues exactly;
- ``run_file``: the file name of the run's best checkpoint, which a resumed run keeps
  writing.

Each run names its checkpoints uniquely (``<Model>-<time>-<random>.pth`` for the
best model, ``...-last.pth`` for the end of the last finished epoch). Files are
written atomically: to a temporary file in the same folder, flushed to disk, then
renamed over the target, so a crash never leaves a half-written file.
"""
import os
import pickle
import secrets
from collections import OrderedDict

import numpy as np
import scipy.sparse as sp
import torch
from recbole.utils import enum_type

from recbole.utils import get_local_time

from recbole_anchor import rng_state
from recbole_anchor.atomic_io import atomic_open
from recbole_anchor.errors import CheckpointError, TrainingDivergedError

_ENUMS = {
    name: getattr(enum_type, name)
    for name in ("ModelType", "InputType", "EvaluatorType", "FeatureType", "FeatureSource")
}


def encode_plain(value):
    """Turn a config value into data that ``weights_only`` unpickling accepts."""
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum_type.Enum) and type(value).__name__ in _ENUMS:
        return {"__enum__": type(value).__name__, "name": value.name}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_plain(v) for v in value]}
    if isinstance(value, list):
        return [encode_plain(v) for v in value]
    if isinstance(value, dict):
        return {key: encode_plain(v) for key, v in value.items()}
    return {"__repr__": repr(value)}


def decode_plain(value):
    """Inverse of :func:`encode_plain` (``__repr__`` values stay strings)."""
    if isinstance(value, list):
        return [decode_plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__enum__" in value:
        return _ENUMS[value["__enum__"]][value["name"]]
    if "__device__" in value:
        return torch.device(value["__device__"])
    if "__tuple__" in value:
        return tuple(decode_plain(v) for v in value["__tuple__"])
    if "__repr__" in value:
        return value["__repr__"]
    return {key: decode_plain(v) for key, v in value.items()}


def encode_arrays(value):
    """Write numpy arrays and scipy sparse matrices inside ``value`` as tensors."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value))}
    if sp.issparse(value):
        csr = sp.csr_matrix(value)
        return {
            "__sparse__": value.format,
            "data": torch.from_numpy(csr.data),
            "indices": torch.from_numpy(csr.indices),
            "indptr": torch.from_numpy(csr.indptr),
            "shape": list(csr.shape),
        }
    if isinstance(value, dict):
        return {key: encode_arrays(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(encode_arrays(v) for v in value)
    return value


def decode_arrays(value):
    """Inverse of :func:`encode_arrays`."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy()
        if "__sparse__" in value:
            csr = sp.csr_matrix(
                (value["data"].numpy(), value["indices"].numpy(), value["indptr"].numpy()),
                shape=tuple(value["shape"]),
            )
            return csr.asformat(value["__sparse__"])
        return {key: decode_arrays(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(decode_arrays(v) for v in value)
    return value


def config_to_plain(config):
    """The config's final dict as plain data (accepts a RecBole Config or a dict)."""
    final = getattr(config, "final_config_dict", config)
    return encode_plain(dict(final))


def atomic_save(obj, path):
    """``torch.save`` to ``path`` through a temporary file, fsync and rename."""
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


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


def save_trainer_checkpoint(trainer, epoch, path):
    """Write a RecBole trainer's state as a weights-only-loadable checkpoint."""
    check_finite_weights(trainer, epoch)
    best_valid_result = getattr(trainer, "best_valid_result", None)
    state = {
        "config": config_to_plain(trainer.config),
        "epoch": epoch,
        "cur_step": trainer.cur_step,
        "best_valid_score": float(trainer.best_valid_score),
        "best_valid_result": encode_plain(dict(best_valid_result or {})) or None,
        "valid_score_history": list(getattr(trainer, "valid_score_history", [])),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": encode_arrays(trainer.model.other_parameter()),
        "optimizer": trainer.optimizer.state_dict(),
        "rng_state": rng_state.capture(training_generators(trainer)),
        "run_file": os.path.basename(trainer.saved_model_file),
    }
    atomic_save(state, path)


def load_checkpoint(path, map_location=None, trust_checkpoint=False):
    """Load a checkpoint with ``weights_only=True`` and decode its plain data.

    A checkpoint written by plain RecBole (which pickles a Config object) is refused
    unless ``trust_checkpoint`` is set, since unpickling it can run arbitrary code.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_checkpoint:
            first_line = str(err).strip().splitlines()[-1][:200]
            raise CheckpointError(
                f"checkpoint '{path}' holds pickled objects that weights-only loading "
                f"refuses ({first_line}); if it is a RecBole checkpoint you trust, "
                "load it with --trust-checkpoint (this runs code stored in the file)"
            ) from None
        state = torch.load(path, map_location=map_location, weights_only=False)
        config = state.get("config")
        state["config"] = config_to_plain(config) if config is not None else None
        state["other_parameter"] = encode_arrays(state.get("other_parameter"))
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"checkpoint '{path}' cannot be read: {err}") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"'{path}' is not a model checkpoint (no state_dict)")
    state["config"] = decode_plain(state.get("config"))
    state["other_parameter"] = decode_arrays(state.get("other_parameter"))
    return state


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
    # the trend-aware stopping rule (compat) reads the validation scores so far
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
        trainer.model.load_state_dict(state["state_dict"])
        trainer.model.load_other_parameter(state.get("other_parameter"))
        trainer.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
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
