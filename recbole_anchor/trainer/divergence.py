"""Stop before a step whose loss is NaN or Inf.

RecBole's ``Trainer._check_nan`` misses an infinite loss and raises a bare
``ValueError("Training loss is nan")`` naming neither epoch nor step. A plugin trainer
raises :class:`~recbole_anchor.errors.TrainingDivergedError` for NaN and Inf, before
the bad step changes the weights, naming the epoch, the step and the last good
checkpoint, which is never overwritten by non-finite weights
(:func:`recbole_anchor.trainer.checkpoint.check_finite_weights`).
"""
import torch

from recbole_anchor.errors import TrainingDivergedError
from recbole_anchor.trainer.checkpoint import last_good_checkpoint


def check_finite_loss(trainer, loss):
    """Count the step; raise TrainingDivergedError if ``loss`` is NaN or Inf."""
    batch = getattr(trainer, "batch_in_epoch", 0)
    trainer.batch_in_epoch = batch + 1
    if bool(torch.isfinite(loss).all()):
        return
    epoch = getattr(trainer, "epoch_in_progress", None)
    batches = len(getattr(trainer, "train_data", None) or ())
    step = epoch * batches + batch if epoch is not None and batches else batch
    value = "NaN" if bool(torch.isnan(loss).any()) else "Inf"
    good = last_good_checkpoint(trainer)
    kept = f"the last good checkpoint {good} is kept" if good else "no checkpoint was written"
    raise TrainingDivergedError(
        f"training diverged: the loss is {value} at epoch {epoch}, step {step} "
        f"(batch {batch} of the epoch); stopped before that step, {kept}; lower "
        "learning_rate or set clip_grad_norm"
    )
