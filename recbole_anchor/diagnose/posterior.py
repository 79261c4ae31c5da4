r"""The Gaussian posterior :math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)`
of a trained VAE recommender, one small adapter per model family.

Every adapter gives, for binary user rows :math:`x` (B x n_items):

- ``encode(rows, mask)``: :math:`(\mu, \log\sigma^2)` of the clean input
  (``mask=False``) or of one input-masking draw at the model's own dropout rate
  (``mask=True``, :math:`\tilde x = \operatorname{dropout}_p(x/\lVert x\rVert)`);
- ``decode(z)``: the item logits :math:`g_\theta(z)`;
- ``prior_curvature(mu, rows)``: the curvature in :math:`\mu` of the model's KL term
  (the mean eigenvalue of its Hessian, per user), the part of :math:`L` in
  :math:`\tau^2` that is not the likelihood's;
- ``dropout_prob``, ``beta`` (the KL weight now; None when it is per user),
  ``gamma`` (RecVAE's per-interaction KL weight, 0 elsewhere) and ``anchor_weight``;
- ``anchor_centroid(rows)``: :math:`\bar e` for models with trained item anchors,
  else None.

The anchor term is read the same way for every model family, from the plugin's shared
component :class:`~recbole_anchor.model.anchor.AnchorRegularized` (AnchorMultVAE,
AnchorRecVAE): ``anchor_weight`` is :math:`\lambda_A(t)` at the model's saved training
step ``t``, warm-up included (:func:`~recbole_anchor.model.anchor.anchor_weight_at`),
0 for models without anchors.
"""
import torch
import torch.nn.functional as F
from recbole.model.general_recommender.multivae import MultiVAE
from recbole.model.general_recommender.recvae import RecVAE

from recbole_anchor.errors import DiagnosticsError
from recbole_anchor.model.anchor import AnchorRegularized, anchor_weight_at


class Posterior:
    """What every adapter shares: the model and its anchor term (if any)."""

    family = None
    gamma = 0.0

    def __init__(self, model):
        self.model = model
        self.anchored = isinstance(model, AnchorRegularized)
        self.anchor_weight = (
            anchor_weight_at(int(model.step), model.anchor_weight, model.anchor_warmup_steps)
            if self.anchored
            else 0.0
        )

    def decode(self, z):
        return self.model.decoder(z)

    def prior_curvature(self, mu, rows):
        r""":math:`\beta`: the Hessian of :math:`\beta\,\mathrm{KL}(q \Vert \mathcal N(0, I))`
        in :math:`\mu` is :math:`\beta I`."""
        return self.beta

    def anchor_centroid(self, rows):
        r""":math:`\bar e = X E / |S|` of the rows from the model's anchor table, or None
        for a model without anchors or whose anchors were not trained (weight 0)."""
        if not self.anchored or not self.model.anchor_weight > 0:
            return None
        return self.model.anchor.centroid(rows)[0]


class EncodePosterior(Posterior):
    """Models with ``encode(rows, mask=...) -> (mu, logvar)`` and a ``decoder``:
    AnchorMultVAE (``anchor_weight`` 0 included) and plugin models that follow it."""

    family = "encode"

    def __init__(self, model):
        super().__init__(model)
        self.dropout_prob = float(model.dropout_prob)
        kl_beta = getattr(model, "kl_beta", None)
        step = int(getattr(model, "step", 0))
        self.beta = float(kl_beta(step)) if kl_beta is not None else float(model.anneal_cap)

    def encode(self, rows, mask):
        return self.model.encode(rows, mask=mask)


class MultiVAEPosterior(Posterior):
    r"""RecBole's MultiVAE: :math:`h = f(\operatorname{dropout}(x/\lVert x\rVert))`,
    :math:`\mu` the first half of :math:`h`, :math:`\log\sigma^2` the second."""

    family = "MultiVAE"

    def __init__(self, model):
        super().__init__(model)
        self.dropout_prob = float(model.drop_out)
        self.beta = float(model.anneal_cap)

    def encode(self, rows, mask):
        h = F.dropout(F.normalize(rows), self.dropout_prob, training=mask)
        h = self.model.encoder(h)
        half = int(self.model.lat_dim / 2)
        return h[:, :half], h[:, half:]


class RecVAEPosterior(Posterior):
    r"""RecBole's RecVAE and AnchorRecVAE: ``encoder(rows, dropout_prob)`` returns (mu,
    logvar); its dropout only acts in training mode, so a masked draw switches it on.
    The KL term is :math:`\beta(x)(\log q(z \mid x) - \log p(z \mid \phi_{old}, x))` with
    :math:`\beta(x) = \gamma\lVert x\rVert_1` (``beta`` when :math:`\gamma = 0`) and the
    composite prior :math:`p`, a mixture per latent dimension."""

    family = "RecVAE"

    def __init__(self, model):
        super().__init__(model)
        self.dropout_prob = float(model.dropout_prob)
        self.gamma = float(model.gamma or 0.0)
        self.beta = None if self.gamma else float(model.beta)

    def kl_weight(self, rows):
        r""":math:`\beta(x)`: per user (B,) when :math:`\gamma > 0`, else ``beta``."""
        return self.gamma * rows.sum(dim=1) if self.gamma else float(self.model.beta)

    def prior_curvature(self, mu, rows):
        r""":math:`\beta(x)\,\tfrac1d\sum_j \partial^2_{z_j}(-\log p_j(z_j \mid \phi_{old}, x))`
        at :math:`z = \mu` (B,): the reparameterised :math:`\log q` does not depend on
        :math:`\mu`, and the prior is a product over dimensions, so its Hessian is
        diagonal and two backward passes give it."""
        with torch.enable_grad():
            z = mu.detach().clone().requires_grad_(True)
            log_prior = self.model.prior(rows, z)  # B x d, entry (u, j) reads z[u, j] only
            (first,) = torch.autograd.grad(log_prior.sum(), z, create_graph=True)
            (second,) = torch.autograd.grad(first.sum(), z)
        return self.kl_weight(rows) * (-second).mean(dim=1)

    def encode(self, rows, mask):
        encoder = self.model.encoder
        was_training = encoder.training
        encoder.train(mask)  # the encoder has LayerNorm and dropout only: no state
        try:
            return encoder(rows, self.dropout_prob if mask else 0.0)
        finally:
            encoder.train(was_training)


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
        "know; use a checkpoint of AnchorMultVAE, AnchorRecVAE, MultiVAE or RecVAE"
    )


@torch.no_grad()
def encode_all(posterior, rows, mask, batch_size=1024):
    r"""(:math:`\mu`, :math:`\log\sigma^2`) (N x d each) of all ``rows`` (N x n_items,
    a torch tensor), encoded in batches of ``batch_size`` users."""
    parts = [posterior.encode(rows[i : i + batch_size], mask) for i in range(0, len(rows), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
