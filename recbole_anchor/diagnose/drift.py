r"""Masking drift: how much a user's posterior moves between input-masking draws.

For :math:`R` draws :math:`\tilde x^{(r)} = \operatorname{dropout}_p(x/\lVert x\rVert)` at
the model's dropout rate :math:`p`, with posterior means :math:`\mu^{(r)}_u`:

.. math::

    D_u = \sum_j \operatorname{Var}_r\big[\mu^{(r)}_{uj}\big]
    \qquad\text{(drift variance, population variance over draws)}

and the stability of each user's :math:`k` nearest latent neighbours (by :math:`W_2`)
between draws, as the mean Jaccard overlap of the neighbour sets over all pairs of
draws.

The paper predicts that the anchor term shrinks the masking variance of
:math:`\mu` by :math:`\tau^2 = (L / (L + 2\lambda_A))^2`: if the encoder's mean
minimises a per-user objective of curvature :math:`L` in :math:`\mu`, adding
:math:`\lambda_A\lVert\mu-\bar e\rVert^2` (curvature :math:`2\lambda_A`, centre
:math:`\bar e` fixed by the unmasked item set) pulls every draw toward :math:`\bar e`
by the factor :math:`L/(L+2\lambda_A)`. Here :math:`L_u` is estimated at the clean
:math:`\mu_u` as the mean eigenvalue of the Gauss-Newton Hessian of the objective
without the anchor term,

.. math::

    L_u = \tfrac1d \operatorname{tr}\big(J^\top n_u(\operatorname{diag}\pi - \pi\pi^\top) J\big)
        + \beta,\qquad \pi = \operatorname{softmax}(g_\theta(\mu_u)),\ J = \partial g_\theta/\partial z,

with :math:`n_u = |S_u|`, the trace from Hutchinson probes (``curvature``), and
:math:`\beta` the curvature of the model's KL term (for RecVAE's composite prior, its
exact diagonal Hessian at :math:`\mu_u` times :math:`\beta(x)`; see
:meth:`~recbole_anchor.diagnose.posterior.Posterior.prior_curvature`).
"""
import itertools

import torch

from recbole_anchor.diagnose.geometry import w2_embedding
from recbole_anchor.diagnose.posterior import encode_all


@torch.no_grad()
def mask_draws(posterior, rows, draws, seed, progress=None):
    r"""(:math:`\mu^{(r)}`, :math:`\log\sigma^{2(r)}`), each (R x N x d), for ``draws``
    seeded masking draws of ``rows``; the global random state is left as it was."""
    mus, logvars = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(draws):
            mu, logvar = encode_all(posterior, rows, mask=True)
            mus.append(mu)
            logvars.append(logvar)
            if progress is not None:
                progress.update(1)
    return torch.stack(mus), torch.stack(logvars)


def drift_variance(mu_draws):
    r""":math:`D_u = \sum_j \operatorname{Var}_r[\mu^{(r)}_{uj}]` per user (N,)."""
    return mu_draws.var(dim=0, unbiased=False).sum(dim=1)


@torch.no_grad()
def nearest_neighbours(mu, logvar, k, batch_size=1024):
    r"""Positions (N x k) of each user's ``k`` nearest other users by :math:`W_2`."""
    points = w2_embedding(mu, logvar)
    found = []
    for start in range(0, len(points), batch_size):
        distance = torch.cdist(points[start : start + batch_size], points)
        own = torch.arange(start, start + len(distance))
        distance[torch.arange(len(distance)), own] = float("inf")
        found.append(distance.topk(k, dim=1, largest=False).indices)
    return torch.cat(found)


def neighbour_overlap(a, b):
    r"""Jaccard overlap :math:`|A_u \cap B_u| / |A_u \cup B_u|` of two neighbour sets
    per user, from (N x k) position tensors."""
    k = a.shape[1]
    common = (a.unsqueeze(2) == b.unsqueeze(1)).sum(dim=(1, 2)).to(torch.float64)
    return common / (2 * k - common)


def neighbour_stability(mu_draws, logvar_draws, clean_neighbours, k):
    """Per user (N,): the mean overlap of the k-NN sets over all pairs of draws, and
    the mean overlap of each draw's k-NN set with the clean input's."""
    neighbours = [nearest_neighbours(m, v, k) for m, v in zip(mu_draws, logvar_draws)]
    across = torch.stack(
        [neighbour_overlap(a, b) for a, b in itertools.combinations(neighbours, 2)]
    ).mean(dim=0)
    with_clean = torch.stack(
        [neighbour_overlap(n, clean_neighbours) for n in neighbours]
    ).mean(dim=0)
    return across, with_clean


@torch.no_grad()
def curvature(posterior, mu, rows, probes=8, seed=0, batch_size=1024):
    r""":math:`L_u` (N,): Hutchinson estimate of the mean Gauss-Newton eigenvalue of the
    multinomial likelihood at :math:`\mu_u`, plus the curvature of the KL term
    (``posterior.prior_curvature``: :math:`\beta` for a standard-normal prior)."""
    generator = torch.Generator().manual_seed(seed)
    n_items = rows.sum(dim=1)
    total = torch.zeros(len(mu), dtype=torch.float64)
    prior = torch.zeros(len(mu), dtype=torch.float64)
    for start in range(0, len(mu), batch_size):
        part = slice(start, start + batch_size)
        prior[part] = torch.as_tensor(posterior.prior_curvature(mu[part], rows[part]), dtype=torch.float64)
    for _ in range(probes):
        probe = torch.randint(0, 2, mu.shape, generator=generator).to(mu.dtype) * 2 - 1
        for start in range(0, len(mu), batch_size):
            part = slice(start, start + batch_size)
            logits, jv = torch.func.jvp(posterior.decode, (mu[part],), (probe[part],))
            pi = torch.softmax(logits, dim=1)
            quadratic = (pi * jv.pow(2)).sum(dim=1) - (pi * jv).sum(dim=1).pow(2)
            total[part] += (n_items[part] * quadratic).double()
    return (total / probes / mu.shape[1] + prior).to(mu.dtype)


def predicted_tau2(curvature_l, anchor_weight):
    r""":math:`\tau^2 = (L / (L + 2\lambda_A))^2`, elementwise."""
    return (curvature_l / (curvature_l + 2.0 * anchor_weight)).pow(2)
