"""The one seam through which the plugin's training features reach every RecBole trainer.

:func:`with_training_features` takes a trainer class (RecBole's ``Trainer``,
``RecVAETrainer``, ``PretrainTrainer``, ..., or the plugin's
:class:`~recbole_anchor.trainer.anchorrecvae_trainer.AnchorRecVAETrainer`) and returns a
subclass with :class:`TrainingFeatures` in front of it. ``registry.get_trainer``, which
the quick start, comparisons and tuning use, returns these subclasses, so a baseline run
through the plugin trains under exactly the same rules as the plugin's own models,
while RecBole's classes themselves stay as RecBole wrote them (plus the compatibility
fixes of :mod:`recbole_anchor.compat`). What the subclass adds, each in its own module:

- exact resume (:mod:`~recbole_anchor.trainer.checkpoint`): unique run files, a
  ``-last.pth`` checkpoint after every epoch with every optimizer and random generator,
  atomic writes, generators restored where they were captured;
- divergence checks (:mod:`~recbole_anchor.trainer.divergence`): NaN or Inf loss stops
  the run before the bad step, with a one-line error;
- the stopping rule (:mod:`~recbole_anchor.trainer.stopping`): ``stopping_rule:
  recbole`` or ``trend``;
- ``fused_optimizer`` (:mod:`~recbole_anchor.trainer.optimizer`): torch's fused
  optimizer kernels;
- multi-process runs: every process writes under process 0's run file name.
"""
import torch
from recbole.trainer.trainer import Trainer

from recbole_anchor.compat.weights_only_checkpoints import load_checkpoint
from recbole_anchor.trainer import checkpoint, divergence, stopping
from recbole_anchor.trainer.optimizer import apply_fused_optimizer


class TrainingFeatures:
    """Mixin in front of a RecBole ``Trainer`` subclass (see the module docstring)."""

    def __init__(self, config, model):
        self.stopping_rule = stopping.stopping_rule(config)
        super().__init__(config, model)
        self.saved_model_file = checkpoint.unique_checkpoint_path(
            self.checkpoint_dir, config["model"]
        )
        if not config["single_spec"]:
            shared = [self.saved_model_file]
            torch.distributed.broadcast_object_list(shared, src=0)
            self.saved_model_file = shared[0]
        apply_fused_optimizer(self, config)

    def fit(self, train_data, valid_data=None, verbose=True, saved=True,
            show_progress=False, callback_fn=None):
        self.train_data, self.save_last = train_data, saved
        self.epoch_in_progress = None
        result = super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        if saved and self.epoch_in_progress is not None:
            checkpoint.save_last_checkpoint(self, self.epoch_in_progress)
        return result

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        checkpoint.start_epoch(self, train_data, epoch_idx)
        return super()._train_epoch(
            train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress
        )

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_score, valid_result = super()._valid_epoch(valid_data, show_progress)
        stopping.after_validation(self, valid_score, self.stopping_rule)
        return valid_score, valid_result

    def _check_nan(self, loss):
        divergence.check_finite_loss(self, loss)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        checkpoint.save_trainer_checkpoint(self, epoch, self.saved_model_file)
        if verbose:
            self.logger.info(f"Saving current: {self.saved_model_file}")

    def resume_checkpoint(self, resume_file, trust_checkpoint=False, state=None):
        """Continue from ``resume_file`` (``state``: that file, already loaded)."""
        resume_file = str(resume_file)
        if state is None:
            state = load_checkpoint(
                resume_file, map_location=self.device, trust_checkpoint=trust_checkpoint
            )
        checkpoint.restore_trainer_state(self, state, path=resume_file)
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")


_WITH_FEATURES = {}


def with_training_features(trainer_class):
    """``trainer_class`` with :class:`TrainingFeatures` in front (one class per
    trainer class); a trainer that is not a RecBole ``Trainer`` (the decision-tree
    trainers) is returned as it is."""
    if not issubclass(trainer_class, Trainer) or issubclass(trainer_class, TrainingFeatures):
        return trainer_class
    if trainer_class not in _WITH_FEATURES:
        _WITH_FEATURES[trainer_class] = type(
            trainer_class.__name__,
            (TrainingFeatures, trainer_class),
            {"__module__": __name__, "__doc__": trainer_class.__doc__},
        )
    return _WITH_FEATURES[trainer_class]
