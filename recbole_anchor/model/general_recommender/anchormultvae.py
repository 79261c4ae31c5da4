r"""
AnchorMultVAE
################################################
Reference:
    "On the Mechanisms of Collaborative Learning in VAE Recommenders", ICLR 2026
    (arXiv 2511.06781): Mult-VAE plus the anchor (PIA) term.

    Dawen Liang et al. "Variational Autoencoders for Collaborative Filtering", WWW 2018.

For a user's binary item row :math:`x` (the user's training items :math:`S`):

.. math::

    \tilde x &= \operatorname{dropout}_p(x / \lVert x \rVert_2)
        \quad\text{(input masking)} \\
    (\mu, \log\sigma^2) &= f_\phi(\tilde x), \qquad
        z = \mu + \sigma \odot \epsilon,\ \epsilon \sim \mathcal N(0, I) \\
    \mathcal L &= \underbrace{-\textstyle\sum_i x_i \log \operatorname{softmax}(g_\theta(z))_i}_{\text{multinomial NLL}}
        + \beta_t\,\mathrm{KL}\big(q(z\mid\tilde x)\,\Vert\,\mathcal N(0, I)\big)
        + \lambda_A(t)\, L_A

with :math:`\beta_t = \min(\text{anneal\_cap}, t / \text{total\_anneal\_steps})` and
:math:`L_A` the anchor loss of :class:`recbole_anchor.model.anchor.ItemAnchors`.
With ``anchor_weight: 0`` the model is exactly Mult-VAE. Inference scores items with
:math:`g_\theta(\mu)` of the unmasked input.

With ``sparse_input: True`` (the default) a batch's rows stay sparse
(:class:`~recbole_anchor.model.sparse_rows.SparseRows`): the first encoder layer is
:math:`\tilde x W_1^\top` summed over each user's items only, input masking drops
the nonzeros of :math:`x/\lVert x\rVert` (zeros stay zero under dropout, so the
masked input has the same distribution), the NLL sums :math:`\log\operatorname{softmax}`
at the user's items only, and the anchor centroid reads only those items' anchors.
``sparse_input: False`` builds dense B x n_items rows; both give the same losses and
scores up to float rounding (with the same input mask: the two paths draw the mask
from the random stream differently).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.model.init import xavier_normal_initialization
from recbole.utils import InputType

from recbole_anchor.model.anchor import AnchorRegularized
from recbole_anchor.config_checks import (
    check_dropout,
    check_int_at_least,
    check_nonnegative,
    fail,
    is_int,
)
from recbole_anchor.model.sparse_rows import SparseInput, SparseRows


def _mlp(dims):
    """Linear layers of sizes ``dims`` with tanh between them (not after the last)."""
    layers = []
    for index, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if index < len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class AnchorMultVAE(GeneralRecommender, SparseInput, AnchorRegularized):
    r"""Mult-VAE with input masking, annealed :math:`\beta`-KL and learnable item
    anchors (PIA). Trained with RecBole's per-user loader, one row per user."""

    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.hidden_dims = list(config["mlp_hidden_size"])
        self.latent_dim = int(config["latent_dimension"])
        self.dropout_prob = float(config["dropout_prob"])
        self.anneal_cap = float(config["anneal_cap"])
        self.total_anneal_steps = int(config["total_anneal_steps"])

        self.build_histroy_items(dataset)
        # Training steps taken; drives the beta and anchor-weight schedules and is
        # saved with the weights so a resumed run continues both schedules.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

        # Liang et al.: encoder [n_items, *hidden, 2 * latent] -> (mu, logvar),
        # decoder [latent, *reversed(hidden), n_items].
        self.encoder = _mlp([self.n_items] + self.hidden_dims + [2 * self.latent_dim])
        self.decoder = _mlp([self.latent_dim] + self.hidden_dims[::-1] + [self.n_items])
        self.apply(xavier_normal_initialization)
        self.init_sparse_input(config, [self.encoder[0]])
        # Created last, from its own generator: the encoder and decoder start the
        # same whatever the anchor settings.
        self.build_anchors(config, self.latent_dim)

    @staticmethod
    def check_config(config):
        """Raise InvalidConfigError for hyperparameters outside their valid range."""
        hidden = config["mlp_hidden_size"]
        if not isinstance(hidden, (list, tuple)) or not all(is_int(h) and h > 0 for h in hidden):
            fail(config, "mlp_hidden_size", "a list of positive integers, e.g. [600]")
        check_int_at_least(config, 1, "latent_dimension")
        check_dropout(config)
        check_nonnegative(config, "anneal_cap")
        SparseInput.check_sparse_input(config)
        check_int_at_least(config, 0, "total_anneal_steps")
        AnchorRegularized.check_anchor_config(config)

    # ------------------------------------------------------------------- the VAE
    def encode(self, rows, mask=None):
        r""":math:`(\mu, \log\sigma^2) = f_\phi(\operatorname{dropout}(x/\lVert x\rVert))`;
        the dropout (input masking) applies when ``mask`` (default: in training).
        ``rows``: dense (B x n_items) or :class:`SparseRows`."""
        masking = self.training if mask is None else mask
        if isinstance(rows, SparseRows):
            values = rows.l2_normalized_values()
            if masking:
                values = F.dropout(values, self.dropout_prob, training=True)
            first = self.encoder[0]
            h = self.encoder[1:](rows.times(first.weight.t(), values) + first.bias)
        else:
            h = F.normalize(rows, dim=1)
            if masking:
                h = F.dropout(h, self.dropout_prob, training=True)
            h = self.encoder(h)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def reparameterize(self, mu, logvar):
        r""":math:`z = \mu + \exp(\tfrac12\log\sigma^2)\,\epsilon`, :math:`\epsilon \sim
        \mathcal N(0, I)` in training; :math:`z = \mu` in evaluation."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, rows):
        """Item logits, mu and logvar for binary user rows."""
        mu, logvar = self.encode(rows)
        return self.decoder(self.reparameterize(mu, logvar)), mu, logvar

    def kl_beta(self, step):
        r""":math:`\beta_t = \min(\text{anneal\_cap}, t / \text{total\_anneal\_steps})`."""
        if self.total_anneal_steps <= 0:
            return self.anneal_cap
        return min(self.anneal_cap, step / self.total_anneal_steps)

    @staticmethod
    def multinomial_nll(logits, rows):
        r""":math:`-\sum_i x_i \log\operatorname{softmax}(\text{logits})_i`, batch mean;
        for :class:`SparseRows` the sum runs over each user's items only."""
        log_probs = F.log_softmax(logits, dim=1)
        if isinstance(rows, SparseRows):
            return -rows.gather(log_probs).sum() / rows.n_rows
        return -(log_probs * rows).sum(dim=1).mean()

    @staticmethod
    def kl_divergence(mu, logvar):
        r""":math:`\tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)`, batch mean."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()

    def calculate_loss(self, interaction):
        r"""Returns (NLL, :math:`\beta_t` KL, :math:`\lambda_A(t) L_A`); RecBole's trainer
        sums them and logs each. Each training call advances the step by one."""
        rows = self.user_rows(interaction[self.USER_ID])
        step = int(self.step)
        if self.training:
            self.step += 1
        logits, mu, logvar = self.forward(rows)
        nll = self.multinomial_nll(logits, rows)
        kl = self.kl_beta(step) * self.kl_divergence(mu, logvar)
        return nll, kl, self.anchor_loss(rows, mu, logvar, step)

    def predict(self, interaction):
        """Scores of the (user, item) pairs in ``interaction``."""
        scores = self.full_sort_predict(interaction).view(-1, self.n_items)
        item = interaction[self.ITEM_ID]
        return scores[torch.arange(len(item), device=scores.device), item]

    def full_sort_predict(self, interaction):
        r"""Scores :math:`g_\theta(\mu(x_u))` of all items for each user, flattened;
        no masking, no sampling, no anchors."""
        rows = self.user_rows(interaction[self.USER_ID])
        mu, _ = self.encode(rows, mask=False)
        return self.decoder(mu).view(-1)
