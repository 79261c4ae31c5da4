"""Torch's fused optimizer kernels for any RecBole trainer (config key ``fused_optimizer``).

RecBole's trainers build ``torch.optim.Adam`` (or AdamW, SGD, Adagrad) with torch's
default implementation, which on the CPU updates each parameter tensor with about ten
separate elementwise passes. ``fused=True`` applies the same update rule in one pass
over all parameters; the results agree up to float rounding (about 1e-7 relative per
step; tests/test_optimizer.py), a few times faster on the optimizer's share of a
training step. Off unless ``fused_optimizer: True``, so runs stay identical to
RecBole's by default; the ML-20M, Netflix and MSD presets turn it on.
"""
import torch

#: Optimizers whose torch implementation takes ``fused=True`` on the CPU and on CUDA.
FUSABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad)


def fused_copy(optimizer):
    """A fresh optimizer of the same class, parameter groups and settings, fused; the
    optimizer itself when torch has no fused kernel for its class or parameters."""
    if type(optimizer) not in FUSABLE or optimizer.state:
        return optimizer
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not all(p.dtype.is_floating_point for p in params):
        return optimizer
    groups = [
        {key: value for key, value in group.items() if key not in ("fused", "foreach")}
        for group in optimizer.param_groups
    ]
    return type(optimizer)(groups, fused=True)


def apply_fused_optimizer(trainer, config):
    """With ``config['fused_optimizer']``, replace each torch optimizer the trainer
    built (``optimizer``, and RecVAE's ``optimizer_encoder``/``optimizer_decoder``)
    by its fused copy. Call before training starts or a checkpoint is resumed."""
    if not config["fused_optimizer"]:
        return trainer
    for name, value in list(vars(trainer).items()):
        if isinstance(value, torch.optim.Optimizer):
            setattr(trainer, name, fused_copy(value))
    return trainer
