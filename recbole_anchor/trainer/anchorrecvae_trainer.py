"""AnchorRecVAE's trainer, found by ``registry.get_trainer`` as ``<Model>Trainer``."""
from recbole.trainer.trainer import RecVAETrainer


class AnchorRecVAETrainer(RecVAETrainer):
    """RecBole's RecVAETrainer (alternating encoder and decoder passes), with the
    encoder phase updating the item anchors together with the encoder."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.optimizer_encoder = self._build_optimizer(params=model.encoder_parameters())
