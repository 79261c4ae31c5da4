"""RecBole's checkpoints on torch >= 2.6, which loads with ``weights_only=True``.

RecBole 1.2.1 pickles its whole Config object into every checkpoint (the trainer's
``_save_checkpoint`` and ``PretrainTrainer.save_pretrained_model``, RaCT's and S3Rec's
pre-training stage), which torch >= 2.6 refuses to load by default and which would
run code from the file if allowed, so ``evaluate(load_best_model=True)``,
``resume_checkpoint`` and the next stage's ``torch.load(pre_model_path)`` fail
(RecBole #2212, #2215). Here a checkpoint holds only tensors and plain data:

- ``config``: the final config dict, with RecBole's enums, ``torch.device`` and tuples
  written as small tagged dicts (``{"__enum__": "ModelType", "name": "GENERAL"}``);
- ``other_parameter``: numpy arrays and scipy sparse matrices (EASE, ItemKNN, ...)
  written as tensors;
- ``epoch``, ``cur_step``, ``best_valid_score``, ``state_dict``, ``optimizer``, as RecBole
  saves them.

:func:`load_checkpoint` reads one back with ``weights_only=True``; a checkpoint of
plain RecBole (a pickled Config) is refused unless the caller trusts it. Torch's
weights-only loading stays on process-wide. The plugin's own trainers write more
(random generator states, all optimizers; :mod:`recbole_anchor.trainer.checkpoint`)
in the same format.
"""
import os
import pickle

import numpy as np
import scipy.sparse as sp
import torch
from recbole.utils import enum_type

from recbole_anchor.errors import CheckpointError

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
    """Inverse of :func:`encode_arrays`; the tensors may lie on any device (a checkpoint
    loaded with ``map_location="cuda"``: EASE's matrices on a GPU run)."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].cpu().numpy()
        if "__sparse__" in value:
            csr = sp.csr_matrix(
                (value["data"].cpu().numpy(), value["indices"].cpu().numpy(),
                 value["indptr"].cpu().numpy()),
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


def recbole_state(trainer, epoch):
    """What RecBole's ``Trainer._save_checkpoint`` saves, as plain data."""
    return {
        "config": config_to_plain(trainer.config),
        "epoch": epoch,
        "cur_step": trainer.cur_step,
        "best_valid_score": float(trainer.best_valid_score),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": encode_arrays(trainer.model.other_parameter()),
        "optimizer": trainer.optimizer.state_dict(),
    }


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


def load_weights(model, state):
    """Put a loaded checkpoint's weights (and other parameters) into ``model``."""
    model.load_state_dict(state["state_dict"])
    model.load_other_parameter(state.get("other_parameter"))


def apply():
    from recbole.trainer.trainer import PretrainTrainer, Trainer

    recbole_evaluate = Trainer.evaluate
    recbole_save_pretrained = PretrainTrainer.save_pretrained_model

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        torch.save(recbole_state(self, epoch), saved_model_file)
        if verbose:
            self.logger.info(f"Saving current: {saved_model_file}")

    def resume_checkpoint(self, resume_file, trust_checkpoint=False):
        """Load the model and training state from ``resume_file`` (weights only)."""
        state = load_checkpoint(
            str(resume_file), map_location=self.device, trust_checkpoint=trust_checkpoint
        )
        self.start_epoch = state["epoch"] + 1
        self.cur_step = state["cur_step"]
        self.best_valid_score = state["best_valid_score"]
        load_weights(self.model, state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            load_weights(self.model, load_checkpoint(checkpoint_file, map_location=self.device))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return recbole_evaluate(self, eval_data, load_best_model=False, show_progress=show_progress)

    def save_pretrained_model(self, epoch, saved_model_file):
        state = recbole_state(self, epoch)
        torch.save(
            {key: state[key] for key in ("config", "epoch", "state_dict", "optimizer", "other_parameter")},
            saved_model_file,
        )
        self.saved_model_file = saved_model_file

    evaluate.__doc__ = recbole_evaluate.__doc__
    save_pretrained_model.__doc__ = recbole_save_pretrained.__doc__
    Trainer._save_checkpoint = _save_checkpoint
    Trainer.resume_checkpoint = resume_checkpoint
    Trainer.evaluate = evaluate
    PretrainTrainer.save_pretrained_model = save_pretrained_model
