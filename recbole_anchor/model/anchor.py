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
from one product of the binary user rows :math:`X` with :math:`[E, \lVert e_i\rVert^2]`
(the anchors and their squared norms), with no loop over users (:meth:`ItemAnchors.parts`,
the reference, differentiated by autograd). For
:class:`~recbole_anchor.model.sparse_rows.SparseRows` the loss is one fused function
with its gradient written out (:class:`_SparseAnchorLoss`): it reads only the anchors
of the users' items, plus one pass over :math:`E` each way for the squared norms;
tests check it against the reference. The anchors take part in training only;
inference uses the encoder mean and never reads them.

:class:`AnchorRegularized` is the mixin through which a VAE recommender of the plugin
composes the term: it builds the anchors from the config keys ``ANCHOR_CONFIG_KEYS``,
validates them, and gives the weighted term :math:`\lambda_A(t)\,L_A`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_anchor.config_checks import check_int_at_least, check_nonnegative, fail
from recbole_anchor.model.sparse_rows import SparseRows

#: The parts of L_A, in the order of the closed form.
ANCHOR_TERMS = ("pull", "variance", "spread")

#: The config keys of the anchor term, the same for every model that composes it.
ANCHOR_CONFIG_KEYS = ("anchor_weight", "anchor_warmup_steps", "anchor_init_std", "anchor_terms")


def _set_sizes(rows):
    r""":math:`|S_u|` (B,) of binary rows: dense or :class:`SparseRows`."""
    return rows.counts if isinstance(rows, SparseRows) else rows.sum(dim=1)


def _rows_times(rows, table):
    r""":math:`X T` for binary rows :math:`X` and an item-major ``table`` (n_items x k)."""
    return rows.times(table) if isinstance(rows, SparseRows) else rows @ table


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
        dense or :class:`SparseRows`; returns (B x d) centroids and (B,)
        set sizes :math:`|S|`."""
        sizes = _set_sizes(rows).clamp_min(1.0)
        return _rows_times(rows, self.anchors) / sizes.unsqueeze(1), sizes

    def parts(self, rows, mu, logvar):
        r"""The three parts of :math:`L_A` per user, as a dict of (B,) tensors.

        ``rows``: binary user rows (B x n_items), each user's full item set S;
        ``mu``, ``logvar``: posterior of the masked input (B x d).
        """
        sizes = _set_sizes(rows).clamp_min(1.0)
        table = self.anchors
        if "spread" in self.terms:  # one product of X with [E, ||e_i||^2]
            table = torch.cat([table, table.pow(2).sum(dim=1, keepdim=True)], dim=1)
        means = _rows_times(rows, table) / sizes.unsqueeze(1)
        e_bar = means[:, : self.anchors.shape[1]]
        parts = {}
        if "pull" in self.terms:
            parts["pull"] = (mu - e_bar).pow(2).sum(dim=1)
        if "variance" in self.terms:
            parts["variance"] = logvar.exp().sum(dim=1)
        if "spread" in self.terms:
            # mean_i ||e_i - e_bar||^2 = mean_i ||e_i||^2 - ||e_bar||^2
            mean_sq_norm = means[:, -1]
            parts["spread"] = (mean_sq_norm - e_bar.pow(2).sum(dim=1)).clamp_min(0.0)
        return parts

    def forward(self, rows, mu, logvar):
        r"""Per-user :math:`L_A` (B,), the sum of the enabled parts; zero for users
        with an empty item set. For :class:`SparseRows` one fused computation with a
        hand-written gradient (:class:`_SparseAnchorLoss`); otherwise the sum of
        :meth:`parts`."""
        if isinstance(rows, SparseRows):
            return _SparseAnchorLoss.apply(
                self.anchors, mu, logvar, rows.items, rows.user, rows.offsets, rows.counts,
                self.terms,
            )
        has_items = _set_sizes(rows) > 0
        loss = sum(self.parts(rows, mu, logvar).values())
        return loss * has_items.to(mu.dtype)


class _SparseAnchorLoss(torch.autograd.Function):
    r"""Per-user :math:`L_A` of :meth:`ItemAnchors.parts` for :class:`SparseRows`, with
    its gradient written out so that a step reads the anchor table :math:`E` twice
    (its squared row norms forward, :math:`2 c \odot E` backward) and otherwise only
    the rows of the batch's items.

    Forward, per user u with :math:`n_u = |S_u|`:
    :math:`\bar e_u = \frac1{n_u}\sum_{i\in S_u} e_i`,
    :math:`m_u = \frac1{n_u}\sum_{i\in S_u}\lVert e_i\rVert^2`,
    :math:`L_u = \lVert\mu_u-\bar e_u\rVert^2 + \sum_j \exp(\text{logvar}_{uj})
    + \max(0, m_u - \lVert\bar e_u\rVert^2)` (the enabled parts; 0 when :math:`n_u = 0`).

    Backward, for upstream :math:`g_u`, :math:`p_u = g_u` if the pull is on (else 0),
    :math:`s_u = g_u [m_u - \lVert\bar e_u\rVert^2 \ge 0]` if the spread is on (else 0):

    .. math::

        \partial\mu_u = 2p_u(\mu_u - \bar e_u), \quad
        \partial\,\text{logvar}_u = g_u \exp(\text{logvar}_u), \quad
        \partial e_i = 2c_i e_i + \sum_{u \ni i}\frac{G_u}{n_u},

    with :math:`G_u = -2p_u(\mu_u - \bar e_u) - 2s_u\bar e_u` and
    :math:`c_i = \sum_{u \ni i} s_u / n_u`.
    """

    @staticmethod
    def forward(ctx, anchors, mu, logvar, items, user, offsets, counts, terms):
        inv_size = 1.0 / counts.clamp_min(1.0).to(mu.dtype)
        has_items = (counts > 0).to(mu.dtype)
        e_bar = F.embedding_bag(items, anchors, offsets, mode="sum") * inv_size.unsqueeze(1)
        loss = torch.zeros_like(inv_size)
        if "pull" in terms:
            loss = loss + (mu - e_bar).pow(2).sum(dim=1)
        if "variance" in terms:
            loss = loss + logvar.exp().sum(dim=1)
        spread_on = None
        if "spread" in terms:
            sq_norms = torch.linalg.vector_norm(anchors, dim=1).square()
            mean_sq_norm = torch.zeros_like(inv_size).index_add_(0, user, sq_norms[items])
            spread = mean_sq_norm * inv_size - e_bar.pow(2).sum(dim=1)
            spread_on = spread >= 0
            loss = loss + spread.clamp_min(0.0)
        ctx.terms = terms
        ctx.save_for_backward(anchors, mu, logvar, items, user, inv_size, has_items, e_bar,
                              spread_on)
        return loss * has_items

    @staticmethod
    def backward(ctx, grad):
        anchors, mu, logvar, items, user, inv_size, has_items, e_bar, spread_on = (
            ctx.saved_tensors
        )
        terms = ctx.terms
        grad = grad * has_items
        grad_mu = grad_logvar = grad_anchors = None
        grad_e_bar = torch.zeros_like(e_bar)
        if "pull" in terms:
            pull = 2.0 * grad.unsqueeze(1) * (mu - e_bar)
            grad_mu = pull
            grad_e_bar = grad_e_bar - pull
        if "variance" in terms:
            grad_logvar = grad.unsqueeze(1) * logvar.exp()
        coef = None
        if "spread" in terms:
            s = grad * spread_on.to(grad.dtype)
            grad_e_bar = grad_e_bar - 2.0 * s.unsqueeze(1) * e_bar
            coef = torch.zeros(
                anchors.shape[0], dtype=anchors.dtype, device=anchors.device
            ).index_add_(0, items, (s * inv_size)[user])
        if ctx.needs_input_grad[0] and ("pull" in terms or "spread" in terms):
            # sum_{u ni i} G_u / n_u = (X^T diag(1/n)) G: one sparse (n_items x B) product
            scaled_rows_t = torch.sparse_coo_tensor(
                torch.stack([items, user]), inv_size[user], (anchors.shape[0], len(inv_size)),
                check_invariants=False,  # indices come from the batch's own rows
            )
            grad_anchors = (
                torch.zeros_like(anchors) if coef is None
                else (2.0 * coef).unsqueeze(1) * anchors
            )
            grad_anchors.addmm_(scaled_rows_t, grad_e_bar)
        return grad_anchors, grad_mu, grad_logvar, None, None, None, None, None


def anchor_weight_at(step, anchor_weight, warmup_steps):
    r""":math:`\lambda_A(t) = \lambda_A \min(1, t / T_{warm})`, or :math:`\lambda_A`
    when ``warmup_steps`` is 0."""
    if warmup_steps <= 0:
        return float(anchor_weight)
    return float(anchor_weight) * min(1.0, step / warmup_steps)


class AnchorRegularized:
    r"""Mixin giving a Gaussian-posterior VAE recommender the anchor term.

    The model calls :meth:`build_anchors` in its ``__init__`` (after its own weights
    are initialised), calls :meth:`check_anchor_config` from its ``check_config``,
    and adds :meth:`anchor_loss` :math:`= \lambda_A(t)\,\frac1B\sum_u L_A(u)` to
    its training loss. Config keys (``ANCHOR_CONFIG_KEYS``):

    - ``anchor_weight`` :math:`\lambda_A \ge 0`; 0 turns the term off exactly.
    - ``anchor_warmup_steps`` :math:`T_{warm} \ge 0`: :math:`\lambda_A` grows
      linearly from 0 over that many training steps; 0 = no warm-up.
    - ``anchor_init_std`` :math:`\ge 0`: std of the initial anchors.
    - ``anchor_terms``: the parts of :math:`L_A` to use, drawn from ``ANCHOR_TERMS``.
    """

    def build_anchors(self, config, latent_dim):
        """Read the anchor keys of ``config`` and create ``self.anchor``, the item
        anchors of dimension ``latent_dim`` (from their own generator, so the
        model's other weights start the same whatever the anchor settings)."""
        self.anchor_weight = float(config["anchor_weight"])
        self.anchor_warmup_steps = int(config["anchor_warmup_steps"])
        self.anchor = ItemAnchors(
            self.n_items,
            latent_dim,
            init_std=float(config["anchor_init_std"]),
            terms=config["anchor_terms"] or (),
            seed=config["seed"] or 0,
        )

    @staticmethod
    def check_anchor_config(config):
        """Raise InvalidConfigError for an anchor key outside its valid range."""
        check_nonnegative(config, "anchor_weight", "anchor_init_std")
        check_int_at_least(config, 0, "anchor_warmup_steps")
        terms = config["anchor_terms"]
        if terms is not None and (
            not isinstance(terms, (list, tuple)) or not set(terms) <= set(ANCHOR_TERMS)
        ):
            fail(config, "anchor_terms", f"a list drawn from {list(ANCHOR_TERMS)}")

    def anchor_loss(self, rows, mu, logvar, step):
        r""":math:`\lambda_A(t)\,\frac1B\sum_u L_A(u)` at training step ``step`` for
        binary user rows ``rows`` (each user's full item set) and the posterior
        ``mu``, ``logvar``; a zero that reaches no parameter when the weight is 0."""
        weight = anchor_weight_at(step, self.anchor_weight, self.anchor_warmup_steps)
        if weight > 0:
            return weight * self.anchor(rows, mu, logvar).mean()
        return torch.zeros((), device=mu.device)
