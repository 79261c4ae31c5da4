r"""Posterior collapse: how much of the latent space the encoder uses.

For clean-input posteriors :math:`\mathcal N(\mu_u, \operatorname{diag}\sigma_u^2)` of
users :math:`u` and latent dimension :math:`j`:

.. math::

    \mathrm{KL}_j &= \operatorname{mean}_u \tfrac12\big(\mu_{uj}^2 + \sigma_{uj}^2 - 1
        - \log\sigma_{uj}^2\big) \quad\text{(KL to } \mathcal N(0, 1)\text{ per dimension)} \\
    A &= \#\{j : \operatorname{Var}_u[\mu_{uj}] > 0.01\} \quad\text{(active units)}

with the population variance over users; the mean KL is :math:`\sum_j \mathrm{KL}_j` and
the total posterior variance :math:`\operatorname{mean}_u \operatorname{tr}\Sigma_u =
\operatorname{mean}_u \sum_j \sigma_{uj}^2`.
"""

#: Var_x[mu_j] above which latent dimension j counts as active.
ACTIVE_THRESHOLD = 0.01


def kl_per_user_dim(mu, logvar):
    r""":math:`\tfrac12(\mu^2 + \sigma^2 - 1 - \log\sigma^2)` elementwise (N x d)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_per_dim(mu, logvar):
    r""":math:`\mathrm{KL}_j`, the per-dimension KL averaged over users (d,)."""
    return kl_per_user_dim(mu, logvar).mean(dim=0)


def mu_variance(mu):
    r""":math:`\operatorname{Var}_u[\mu_{uj}]` per dimension (d,), population variance."""
    return mu.var(dim=0, unbiased=False)


def active_units(mu, threshold=ACTIVE_THRESHOLD):
    r"""Number of dimensions with :math:`\operatorname{Var}_u[\mu_{uj}] >` ``threshold``."""
    return int((mu_variance(mu) > threshold).sum())


def collapse_report(mu, logvar, threshold=ACTIVE_THRESHOLD):
    """Active units, mean KL and total posterior variance of a set of users."""
    kl = kl_per_dim(mu, logvar)
    return {
        "users": len(mu),
        "active_units": active_units(mu, threshold) if len(mu) > 1 else None,
        "latent_dim": mu.shape[1],
        "mean_kl": float(kl.sum()),
        "total_posterior_variance": float(logvar.exp().sum(dim=1).mean()),
    }


def anchor_distance(mu, e_bar):
    r""":math:`\lVert \mu_u - \bar e_u \rVert` per user (N,): distance of each user's
    posterior mean to its anchor centroid."""
    return (mu - e_bar).norm(dim=1)
