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
"""
import torch
from recbole.model.general_recommender.recvae import RecVAE

from recbole_anchor.model.anchor import AnchorRegularized
from recbole_anchor.config_checks import (
    check_dropout,
    check_int_at_least,
    check_nonnegative,
    fail,
    is_number,
)
from recbole_anchor.model.sparse_rows import SparseRows


class AnchorRecVAE(RecVAE, AnchorRegularized):
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
        self._posterior = None

    @staticmethod
    def check_config(config):
        """Raise InvalidConfigError for hyperparameters outside their valid range."""
        check_int_at_least(config, 1, "hidden_dimension", "latent_dimension")
        check_int_at_least(config, 1, "n_enc_epochs", "n_dec_epochs")
        check_dropout(config)
        check_nonnegative(config, "beta", "gamma", "noise_std")
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

    def forward(self, rating_matrix, dropout_prob):
        """RecVAE's forward; it also keeps the rows and the posterior (mu, logvar)
        of the call for :meth:`calculate_loss` to add the anchor term."""
        x_pred, mu, logvar, z = super().forward(rating_matrix, dropout_prob)
        self._posterior = (rating_matrix, mu, logvar)
        return x_pred, mu, logvar, z

    def calculate_loss(self, interaction, encoder_flag):
        r"""RecVAE's negative ELBO, plus :math:`\lambda_A(t) L_A` in the encoder phase
        (``encoder_flag``), where each training call advances the step by one.
        A scalar, as RecBole's RecVAETrainer expects."""
        negative_elbo = super().calculate_loss(interaction, encoder_flag)
        rows, mu, logvar = self._posterior
        self._posterior = None
        if not encoder_flag:
            return negative_elbo
        step = int(self.step)
        if self.training:
            self.step += 1
        if self.anchor_weight > 0:  # RecVAE's rows are dense; L_A reads their nonzeros
            rows = SparseRows.from_dense(rows)
        return negative_elbo + self.anchor_loss(rows, mu, logvar, step)

    def encoder_parameters(self):
        """What the encoder phase updates: the encoder and the anchors."""
        return list(self.encoder.parameters()) + list(self.anchor.parameters())
