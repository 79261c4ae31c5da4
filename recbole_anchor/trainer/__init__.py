"""The plugin's training behaviour: explicit code, reached through one seam.

- :mod:`~recbole_anchor.trainer.features`: :func:`with_training_features`, the seam that
  puts the plugin's training features in front of any RecBole trainer class;
- :mod:`~recbole_anchor.trainer.checkpoint`: how a run is checkpointed and resumed
  (atomic writes, random generator states, every optimizer);
- :mod:`~recbole_anchor.trainer.stopping`: ``stopping_rule`` (``recbole`` or ``trend``);
- :mod:`~recbole_anchor.trainer.divergence`: a NaN or Inf loss stops the run in one line;
- :mod:`~recbole_anchor.trainer.optimizer`: ``fused_optimizer``;
- :mod:`~recbole_anchor.trainer.memory`: ``keep_freed_memory``;
- :mod:`~recbole_anchor.trainer.anchorrecvae_trainer`: AnchorRecVAE's trainer.

``registry.get_trainer`` finds a plugin model's trainer here as ``<Model>Trainer``.
"""
from recbole_anchor.trainer.anchorrecvae_trainer import AnchorRecVAETrainer
from recbole_anchor.trainer.features import with_training_features

__all__ = ["AnchorRecVAETrainer", "with_training_features"]
