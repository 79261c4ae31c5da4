r"""
AnchorRecVAE
################################################
Reference:
    "On the Mechanisms of Collaborative Learning in VAE Recommenders", ICLR 2026
    (arXiv 2511.06781): RecVAE plus the anchor (PIA) term.

    Ilya Shenbin et al. "RecVAE: A New Variational Autoencoder for Top-N
    Recommendations with Implicit Feedback", WSDM 2020.

RecBole's :class:`~recbole.model.general_recommender.recvae.RecVAE`, unchanged, plus the
anchor term on the encoder's posterior. For a user's binary row :math:`x` (items
:math:`S`) and :math:`(\mu, \log\sigma^2) = f_\phi(\operatorname{dropout}(x/\lVert x\rVert))`:

.. math::

    \mathcal L_{enc} &= \underbrace{-\textstyle\sum_i x_i \log\operatorname{softmax}(g_\theta(z))_i
        + \beta(x)\,\big(\log q(z\mid x) - \log p(z \mid \phi_{old}, x)\big)}_{\text{RecVAE's negative ELBO}}
        + \lambda_A(t)\, L_A(\mu, \sigma^2, E_S), \\
    \mathcal L_{dec} &= \text{RecVAE's negative ELBO, without input dropout,}

with the composite prior :math:`p(z\mid\phi_{old},x)` (standard normal, the previous
encoder's posterior and a wide normal, mixed by ``mixture_weights``),
:math:`\beta(x) = \gamma\,\lVert x\rVert_1` (or ``beta`` when :math:`\gamma = 0`), and
:math:`L_A` the anchor loss of :class:`recbole_anchor.model.anchor.ItemAnchors`.
Training alternates, as in RecVAE, ``n_enc_epochs`` passes of :math:`\mathcal L_{enc}`
that update the encoder and the anchors, a prior update
:math:`\phi_{old} \leftarrow \phi`, and ``n_dec_epochs`` passes of
:math:`\mathcal L_{dec}` that update the decoder
(:class:`recbole_anchor.trainer.AnchorRecVAETrainer`). The reparameterization is
:math:`z = \mu + \epsilon \odot \sigma` with :math:`\epsilon \sim \mathcal N(0, s^2 I)`,
:math:`s` = ``noise_std``: 1.0 (unit noise) as in Shenbin et al.'s code; RecBole's
RecVAE samples with :math:`s = 0.01`, which ``noise_std: 0.01`` reproduces exactly.
The anchor term is applied in
the encoder phase only; :math:`t` counts encoder-phase training steps. With
``anchor_weight: 0`` the model is exactly RecVAE. Inference is RecVAE's:
:math:`g_\theta(\mu(x))`, no anchors.

With ``sparse_input: True`` (the default) a batch's rows stay sparse
(:class:`~recbole_anchor.model.sparse_rows.SparseRows`), as in AnchorMultVAE: the first
layer of the encoder and of the prior's old encoder is :math:`\tilde x W_1^\top`
summed over each user's items only (dropout acts on the nonzeros of
:math:`x/\lVert x\rVert`; zeros stay zero under dropout), and
:math:`\sum_i x_i \log\operatorname{softmax}_i` and :math:`\lVert x\rVert_1` read
those items only. ``sparse_input: False`` runs RecBole's RecVAE code on dense
B x n_items rows; both give the same losses and scores up to float rounding (with the
same dropout mask: the two paths draw it from the random stream differently).
"""
import math

import torch
import torch.nn.functional as F
from recbole.model.general_recommender.recvae import RecVAE, log_norm_pdf, swish

from recbole_anchor.model.anchor import AnchorRegularized
from recbole_anchor.config_checks import (
    check_dropout,
    check_int_at_least,
    check_nonnegative,
    fail,
    is_number,
)
from recbole_anchor.model.sparse_rows import SparseInput, SparseRows


class AnchorRecVAE(RecVAE, SparseInput, AnchorRegularized):
    r"""RecVAE (composite prior, :math:`\gamma`-scaled :math:`\beta`, alternating
    encoder/decoder updates) with learnable item anchors (PIA) on the encoder's
    posterior. Trained with RecBole's per-user loader, one row per user."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        # Encoder-phase training steps taken; drives the anchor-weight warm-up and is
        # saved with the weights so a resumed run continues it.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        # Created after RecVAE's initialisation, from its own generator.
        self.build_anchors(config, self.latent_dim)
        self.noise_std = float(config["noise_std"])
        self.init_sparse_input(config, [self.encoder.fc1, self.prior.encoder_old.fc1])
        self._posterior = None

    @staticmethod
    def check_config(config):
        """Raise InvalidConfigError for hyperparameters outside their valid range."""
        check_int_at_least(config, 1, "hidden_dimension", "latent_dimension")
        check_int_at_least(config, 1, "n_enc_epochs", "n_dec_epochs")
        check_dropout(config)
        check_nonnegative(config, "beta", "gamma", "noise_std")
        SparseInput.check_sparse_input(config)
        weights = config["mixture_weights"]
        if (
            not isinstance(weights, (list, tuple))
            or len(weights) != 3
            or not all(is_number(w) and w >= 0 for w in weights)
            or sum(weights) <= 0
        ):
            fail(
                config,
                "mixture_weights",
                "three numbers >= 0, not all 0 (weights of the standard, "
                "previous-posterior and wide priors), e.g. [0.15, 0.75, 0.1]",
            )
        AnchorRegularized.check_anchor_config(config)

    def reparameterize(self, mu, logvar):
        r"""In training :math:`z = \mu + \epsilon \odot \exp(\tfrac12\log\sigma^2)`,
        :math:`\epsilon \sim \mathcal N(0, s^2 I)` with :math:`s` = ``noise_std``
        (RecBole's RecVAE: :math:`s = 0.01`); :math:`\mu` in evaluation."""
        if not self.training:
            return mu
        std = torch.exp(0.5 * logvar)
        epsilon = torch.zeros_like(std).normal_(mean=0, std=self.noise_std)
        return mu + epsilon * std

    def build_histroy_items(self, dataset):  # RecBole's spelling of the hook
        """The training rows as CSR buffers (:class:`SparseInput`), after the one
        random draw RecBole's hook makes (its history matrix shuffles the interactions
        with ``torch.randperm``): the same seed then gives RecVAE's initial weights."""
        torch.randperm(len(dataset.inter_feat))
        super().build_histroy_items(dataset)

    @staticmethod
    def encoder_posterior(encoder, rows, dropout_prob):
        r"""(:math:`\mu`, :math:`\log\sigma^2`) of RecBole's RecVAE ``encoder`` (the
        current one or the prior's old one) for dense rows or :class:`SparseRows`:
        :math:`h_1 = \operatorname{LN}_1(\operatorname{swish}(W_1 \tilde x + b_1))`,
        :math:`h_k = \operatorname{LN}_k(\operatorname{swish}(W_k h_{k-1} + \sum_{j<k} h_j))`
        for k = 2..5, with :math:`\tilde x = \operatorname{dropout}(x/\lVert x\rVert)`
        (dropout in training mode only, as RecBole's encoder does)."""
        if not isinstance(rows, SparseRows):
            return encoder(rows, dropout_prob=dropout_prob)
        values = F.dropout(rows.l2_normalized_values(), dropout_prob, training=encoder.training)
        h = encoder.ln1(swish(rows.times(encoder.fc1.weight.t(), values) + encoder.fc1.bias))
        total = h
        for fc, ln in ((encoder.fc2, encoder.ln2), (encoder.fc3, encoder.ln3),
                       (encoder.fc4, encoder.ln4), (encoder.fc5, encoder.ln5)):
            h = ln(swish(fc(h) + total))
            total = total + h
        return encoder.fc_mu(h), encoder.fc_logvar(h)

    def forward(self, rating_matrix, dropout_prob):
        """RecVAE's forward for dense rows or :class:`SparseRows`; it also keeps the
        rows and the posterior (mu, logvar) of the call for :meth:`calculate_loss` to
        add the anchor term."""
        mu, logvar = self.encoder_posterior(self.encoder, rating_matrix, dropout_prob)
        z = self.reparameterize(mu, logvar)
        self._posterior = (rating_matrix, mu, logvar)
        return self.decoder(z), mu, logvar, z

    def log_prior(self, rows, z):
        r""":math:`\log p(z \mid \phi_{old}, x)` per latent dimension (B x d): the
        composite prior of RecBole's ``CompositePrior`` (standard normal, the old
        encoder's posterior of ``rows``, a normal of log-variance 10, mixed by
        ``mixture_weights``), for dense rows or :class:`SparseRows`."""
        if not isinstance(rows, SparseRows):
            return self.prior(rows, z)
        prior = self.prior
        post_mu, post_logvar = self.encoder_posterior(prior.encoder_old, rows, 0)
        parts = [log_norm_pdf(z, prior.mu_prior, prior.logvar_prior),
                 log_norm_pdf(z, post_mu, post_logvar),
                 log_norm_pdf(z, prior.mu_prior, prior.logvar_uniform_prior)]
        parts = [part + math.log(w) for part, w in zip(parts, prior.mixture_weights)]
        return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)

    def negative_elbo(self, rows, encoder_flag):
        r"""RecVAE's loss on :class:`SparseRows`, as RecBole's ``calculate_loss`` computes
        it on dense rows: :math:`-\tfrac1B\sum_u\big(\sum_{i \in S_u}
        \log\operatorname{softmax}(g_\theta(z_u))_i - \beta(x_u)\sum_j(\log q(z_{uj}
        \mid x_u) - \log p(z_{uj} \mid \phi_{old}, x_u))\big)`, input dropout in the
        encoder phase only."""
        dropout_prob = self.dropout_prob if encoder_flag else 0
        logits, mu, logvar, z = self.forward(rows, dropout_prob)
        kl_weight = self.gamma * rows.counts if self.gamma else self.beta
        mll = rows.gather(F.log_softmax(logits, dim=-1)).sum() / rows.n_rows
        kld = ((log_norm_pdf(z, mu, logvar) - self.log_prior(rows, z)).sum(dim=-1)
               .mul(kl_weight).mean())
        return -(mll - kld)

    def calculate_loss(self, interaction, encoder_flag):
        r"""RecVAE's negative ELBO, plus :math:`\lambda_A(t) L_A` in the encoder phase
        (``encoder_flag``), where each training call advances the step by one.
        A scalar, as RecBole's RecVAETrainer expects."""
        if self.sparse_input:
            negative_elbo = self.negative_elbo(
                self.user_rows(interaction[self.USER_ID]), encoder_flag)
        else:
            negative_elbo = super().calculate_loss(interaction, encoder_flag)
        rows, mu, logvar = self._posterior
        self._posterior = None
        if not encoder_flag:
            return negative_elbo
        step = int(self.step)
        if self.training:
            self.step += 1
        if self.anchor_weight > 0 and not isinstance(rows, SparseRows):
            rows = SparseRows.from_dense(rows)  # L_A reads the rows' nonzeros
        return negative_elbo + self.anchor_loss(rows, mu, logvar, step)

    def full_sort_predict(self, interaction):
        r"""Scores :math:`g_\theta(\mu(x_u))` of all items for each user, flattened
        (RecBole's RecVAE ranking, on the rows the model reads)."""
        rows = self.user_rows(interaction[self.USER_ID])
        mu, _ = self.encoder_posterior(self.encoder, rows, self.dropout_prob)
        return self.decoder(mu).view(-1)

    def encoder_parameters(self):
        """What the encoder phase updates: the encoder and the anchors."""
        return list(self.encoder.parameters()) + list(self.anchor.parameters())
