r"""Posterior geometry: how far apart users are in latent space, against how far
apart their item sets are.

For diagonal Gaussians :math:`q_u = \mathcal N(\mu_u, \operatorname{diag}\sigma_u^2)`
the 2-Wasserstein distance has the closed form

.. math::

    W_2^2(q_u, q_v) = \lVert \mu_u - \mu_v \rVert^2 + \lVert \sigma_u - \sigma_v \rVert^2,

i.e. the Euclidean distance between the stacked vectors :math:`(\mu, \sigma)`. Input
distance is the Jaccard distance :math:`1 - |S_u \cap S_v| / |S_u \cup S_v|` of the
training item sets.
"""
import numpy as np
import torch
from scipy import stats

#: Quantiles of the W2 distribution written to the report.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def w2_embedding(mu, logvar):
    r"""Stacked :math:`(\mu, \sigma)` (N x 2d): Euclidean distance between rows is
    :math:`W_2` between the users' posteriors."""
    return torch.cat([mu, torch.exp(0.5 * logvar)], dim=1)


def w2_squared(mu_u, logvar_u, mu_v, logvar_v):
    r""":math:`W_2^2 = \lVert\mu_u-\mu_v\rVert^2 + \lVert\sigma_u-\sigma_v\rVert^2` row by row."""
    sigma_u, sigma_v = torch.exp(0.5 * logvar_u), torch.exp(0.5 * logvar_v)
    return (mu_u - mu_v).pow(2).sum(-1) + (sigma_u - sigma_v).pow(2).sum(-1)


def sample_pairs(n_users, n_pairs, seed):
    """``n_pairs`` seeded ordered pairs (u, v) of distinct user positions < n_users."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_users, size=n_pairs)
    v = (u + rng.integers(1, n_users, size=n_pairs)) % n_users
    return u, v


def jaccard_similarity(matrix, u, v):
    r""":math:`|S_u \cap S_v| / |S_u \cup S_v|` for the binary CSR rows ``u`` and ``v``."""
    intersection = np.asarray(matrix[u].multiply(matrix[v]).sum(axis=1)).ravel()
    sizes = np.diff(matrix.indptr)
    union = sizes[u] + sizes[v] - intersection
    return intersection / np.maximum(union, 1)


def geometry_report(w2, jaccard, near_w2, far_jaccard):
    r"""Relation of latent to input distance over a set of pairs.

    Args:
        w2 (np.ndarray): :math:`W_2` of each pair.
        jaccard (np.ndarray): Jaccard similarity of each pair's item sets.
        near_w2 (float): pairs with :math:`W_2` below this are latent-near.
        far_jaccard (float): pairs with Jaccard similarity below this are input-far.

    Returns:
        dict: ``spearman`` (of :math:`W_2` with the Jaccard distance), W2 quantiles,
        ``near_far_share`` (share of latent-near pairs that are input-far: the room
        the geometry gives to global collaboration) and ``far_share`` (share of all
        pairs that are input-far, the level it would have if W2 ignored the input).
    """
    near = w2 < near_w2
    far = jaccard < far_jaccard
    spearman = stats.spearmanr(w2, 1.0 - jaccard).statistic if len(w2) > 2 else np.nan
    return {
        "pairs": len(w2),
        "spearman_w2_vs_jaccard_distance": spearman,
        "w2_quantiles": {str(q): np.quantile(w2, q) for q in QUANTILES} if len(w2) else {},
        "mean_jaccard": jaccard.mean() if len(w2) else None,
        "latent_near_pairs": near.sum(),
        "near_far_share": far[near].mean() if near.any() else None,
        "far_share": far.mean() if len(w2) else None,
    }

