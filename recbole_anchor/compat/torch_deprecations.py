"""RecBole 1.2.1 calls torch APIs that torch has since deprecated, so every run warns.

- The trainers (``recbole/trainer/trainer.py``) use ``torch.cuda.amp.GradScaler`` and
  ``torch.cuda.amp.autocast`` through ``import torch.cuda.amp as amp``, deprecated since
  torch 2.4: every training run printed a ``FutureWarning``, on machines without CUDA
  too. Fixed at the source: the trainer module now sees the same objects through their
  replacements, ``torch.amp.GradScaler("cuda", ...)`` and ``torch.amp.autocast("cuda", ...)``.
- Several models' ``predict`` (RecVAE, RaCT, ...) index a tensor with a list of tensors
  (``scores[[rows, items]]``), which torch reads as before but warns about ("Using a
  non-tuple sequence for multidimensional indexing is deprecated"). The result is the
  same; the warning is silenced for RecBole's model modules only.

No upstream issue: RecBole predates these deprecations.
"""
import functools
import types
import warnings

import torch


def apply():
    from recbole.trainer import trainer as trainer_module

    trainer_module.amp = types.SimpleNamespace(
        GradScaler=functools.partial(torch.amp.GradScaler, "cuda"),
        autocast=functools.partial(torch.amp.autocast, "cuda"),
    )
    warnings.filterwarnings(
        "ignore",
        message="Using a non-tuple sequence for multidimensional indexing",
        category=UserWarning,
        module=r"recbole\.model\.",
    )
