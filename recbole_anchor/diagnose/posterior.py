r"""The Gaussian posterior :math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)`
of a trained VAE recommender, one small adapter per model family.

Every adapter gives, for binary user rows :math:`x` (B x n_items):

- ``encode(rows, mask)``: :math:`(\mu, \log\sigma^2)` of the clean input
  (``mask=False``) or of one input-masking draw at the model's own dropout rate
  (``mask=True``, :math:`\tilde x = \operatorname{dropout}_p(x/\lVert x\rVert)`);
- ``decode(z)``: the item logits :math:`g_\theta(z)`;
- ``dropout_prob``, ``beta`` (the KL weight now) and ``anchor_weight``
  (:math:`\lambda_A`, 0 for models without anchors);
- ``anchor_centroid(rows)``: :math:`\bar e` for models with item anchors, else None.
"""
import torch
import torch.nn.functional as F
from recbole.model.general_recommender.multivae import MultiVAE
from recbole.model.general_recommender.recvae import RecVAE

from recbole_anchor.errors import DiagnosticsError
from recbole_anchor.model.anchor import anchor_weight_at


class EncodePosterior:
    """Models with ``encode(rows, mask=...) -> (mu, logvar)`` and a ``decoder``:
    AnchorMultVAE (``anchor_weight`` 0 included) and plugin models that follow it."""

    family = "encode"

    def __init__(self, model):
        self.model = model
        self.dropout_prob = float(model.dropout_prob)
        step = int(getattr(model, "step", 0))
        kl_beta = getattr(model, "kl_beta", None)
        self.beta = float(kl_beta(step)) if kl_beta is not None else float(model.anneal_cap)
        anchor = getattr(model, "anchor", None)
        self.anchor_weight = (
            anchor_weight_at(step, model.anchor_weight, model.anchor_warmup_steps)
            if anchor is not None
            else 0.0
        )

    def encode(self, rows, mask):
        return self.model.encode(rows, mask=mask)

    def decode(self, z):
        return self.model.decoder(z)

    def anchor_centroid(self, rows):
        r""":math:`\bar e`, or None when the anchors were not trained (weight 0)."""
        if getattr(self.model, "anchor", None) is None or not self.model.anchor_weight > 0:
            return None
        return self.model.anchor.centroid(rows)[0]


class MultiVAEPosterior:
    r"""RecBole's MultiVAE: :math:`h = f(\operatorname{dropout}(x/\lVert x\rVert))`,
    :math:`\mu` the first half of :math:`h`, :math:`\log\sigma^2` the second."""

    family = "MultiVAE"

    def __init__(self, model):
        self.model = model
        self.dropout_prob = float(model.drop_out)
        self.beta = float(model.anneal_cap)
        self.anchor_weight = 0.0

    def encode(self, rows, mask):
        h = F.dropout(F.normalize(rows), self.dropout_prob, training=mask)
        h = self.model.encoder(h)
        half = int(self.model.lat_dim / 2)
        return h[:, :half], h[:, half:]

    def decode(self, z):
        return self.model.decoder(z)

    def anchor_centroid(self, rows):
        return None


class RecVAEPosterior:
    """RecBole's RecVAE: ``encoder(rows, dropout_prob)`` returns (mu, logvar); its
    dropout only acts in training mode, so a masked draw switches it on."""

    family = "RecVAE"

    def __init__(self, model):
        self.model = model
        self.dropout_prob = float(model.dropout_prob)
        self.beta = float(model.beta)
        self.anchor_weight = 0.0

    def encode(self, rows, mask):
        encoder = self.model.encoder
        was_training = encoder.training
        encoder.train(mask)  # the encoder has LayerNorm and dropout only: no state
        try:
            return encoder(rows, self.dropout_prob if mask else 0.0)
        finally:
            encoder.train(was_training)

    def decode(self, z):
        return self.model.decoder(z)

    def anchor_centroid(self, rows):
        return None


def posterior_of(model):
    """The posterior adapter for ``model``; a one-line error for other models."""
    model.eval()
    if callable(getattr(model, "encode", None)) and hasattr(model, "decoder"):
        return EncodePosterior(model)
    if isinstance(model, MultiVAE):
        return MultiVAEPosterior(model)
    if isinstance(model, RecVAE):
        return RecVAEPosterior(model)
    raise DiagnosticsError(
        f"model {type(model).__name__} has no Gaussian user posterior these diagnostics "
        "know; use a checkpoint of AnchorMultVAE, MultiVAE or RecVAE"
    )


@torch.no_grad()
def encode_all(posterior, rows, mask, batch_size=1024):
    r"""(:math:`\mu`, :math:`\log\sigma^2`) (N x d each) of all ``rows`` (N x n_items,
    a torch tensor), encoded in batches of ``batch_size`` users."""
    parts = [posterior.encode(rows[i : i + batch_size], mask) for i in range(0, len(rows), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
