"""The random number generators a training run draws from, saved and restored as plain
data (tensors, ints, lists) so checkpoints stay loadable with ``weights_only=True``.

A run draws from Python's ``random``, numpy's global generator (RecBole's negative
samplers), torch's CPU generator (dropout, the reparameterization noise), each CUDA
device's generator, and the ``torch.Generator`` each RecBole dataloader shuffles with.
Restoring all of them at the point they were captured makes a resumed run draw the
same numbers as one that never stopped.
"""
import random

import numpy as np
import torch


def capture(generators=None):
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


def restore(state, generators=None):
    """Put the states from :func:`capture` back; returns the names in ``generators``
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
