r"""The anchor (PIA) regularizer over a Gaussian-posterior encoder.

Each item i has a learnable anchor :math:`e_i \in \mathbb{R}^d` (the rows of
:math:`E`, ``n_items x d``). For a user with item set :math:`S` and posterior
:math:`q(z \mid \tilde x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)` of the masked
input :math:`\tilde x`,

.. math::

    L_A = \frac{1}{|S|}\sum_{i \in S} \mathbb E_{z \sim q}\,\lVert z - e_i \rVert^2
        = \underbrace{\lVert \mu - \bar e \rVert^2}_{\text{pull}}
        + \underbrace{\operatorname{tr}\Sigma}_{\text{variance}}
        + \underbrace{\frac{1}{|S|}\sum_{i \in S}\lVert e_i - \bar e\rVert^2}_{\text{spread}},
    \qquad \bar e = \frac{1}{|S|}\sum_{i \in S} e_i,

with :math:`\operatorname{tr}\Sigma = \sum_j \exp(\text{logvar}_j)`. :math:`S` is the
user's full (unmasked) training item set. All three parts are computed for a batch
from two products of the binary user rows :math:`X` with :math:`E` and with the
anchors' squared norms, with no loop over users. The anchors take part in training
only; inference uses the encoder mean and never reads them.
"""
import torch
import torch.nn as nn

#: The parts of L_A, in the order of the closed form.
ANCHOR_TERMS = ("pull", "variance", "spread")


class ItemAnchors(nn.Module):
    r"""Item anchor table :math:`E` and the closed-form anchor loss :math:`L_A`.

    Args:
        n_items (int): number of items (rows of :math:`E`).
        latent_dim (int): dimension :math:`d` of the latent space.
        init_std (float): anchors start as :math:`\mathcal N(0, \text{init\_std}^2)`.
        terms (sequence of str): which parts of :math:`L_A` to use (``ANCHOR_TERMS``).
        seed (int): seed of a private generator for the initial anchors, so that
            creating the anchors leaves the global random stream (and with it the
            encoder and decoder initialisation) untouched.
    """

    def __init__(self, n_items, latent_dim, init_std=0.01, terms=ANCHOR_TERMS, seed=0):
        super().__init__()
        unknown = set(terms) - set(ANCHOR_TERMS)
        if unknown:
            raise ValueError(f"unknown anchor terms {sorted(unknown)}; use {ANCHOR_TERMS}")
        self.terms = tuple(t for t in ANCHOR_TERMS if t in terms)
        generator = torch.Generator().manual_seed(int(seed))
        self.anchors = nn.Parameter(
            torch.randn(n_items, latent_dim, generator=generator) * init_std
        )

    def centroid(self, rows):
        r""":math:`\bar e = X E / |S|` for binary user rows ``rows`` (B x n_items),
        dense or sparse; returns (B x d) centroids and (B,) set sizes :math:`|S|`."""
        sizes = rows.sum(dim=1).to_dense() if rows.is_sparse else rows.sum(dim=1)
        sizes = sizes.clamp_min(1.0)
        return (rows @ self.anchors) / sizes.unsqueeze(1), sizes

    def parts(self, rows, mu, logvar):
        r"""The three parts of :math:`L_A` per user, as a dict of (B,) tensors.

        ``rows``: binary user rows (B x n_items), each user's full item set S;
        ``mu``, ``logvar``: posterior of the masked input (B x d).
        """
        e_bar, sizes = self.centroid(rows)
        parts = {}
        if "pull" in self.terms:
            parts["pull"] = (mu - e_bar).pow(2).sum(dim=1)
        if "variance" in self.terms:
            parts["variance"] = logvar.exp().sum(dim=1)
        if "spread" in self.terms:
            # mean_i ||e_i - e_bar||^2 = mean_i ||e_i||^2 - ||e_bar||^2
            mean_sq_norm = (rows @ self.anchors.pow(2).sum(dim=1, keepdim=True)).squeeze(1)
            parts["spread"] = (mean_sq_norm / sizes - e_bar.pow(2).sum(dim=1)).clamp_min(0.0)
        return parts

    def forward(self, rows, mu, logvar):
        r"""Per-user :math:`L_A` (B,), the sum of the enabled parts; zero for users
        with an empty item set."""
        has_items = (rows.sum(dim=1).to_dense() if rows.is_sparse else rows.sum(dim=1)) > 0
        loss = sum(self.parts(rows, mu, logvar).values())
        return loss * has_items.to(mu.dtype)


def anchor_weight_at(step, anchor_weight, warmup_steps):
    r""":math:`\lambda_A(t) = \lambda_A \min(1, t / T_{warm})`, or :math:`\lambda_A`
    when ``warmup_steps`` is 0."""
    if warmup_steps <= 0:
        return float(anchor_weight)
    return float(anchor_weight) * min(1.0, step / warmup_steps)
