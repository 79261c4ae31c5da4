"""Run every diagnostic on one model and put the numbers, per activity group, in one
report; compare two reports (a model against the same model without anchors)."""
import dataclasses

import numpy as np
import torch

from recbole_anchor.diagnose import collapse, drift, geometry
from recbole_anchor.diagnose.activity import dense_rows, sample_users, training_matrix
from recbole_anchor.diagnose.posterior import encode_all, posterior_of
from recbole_anchor.errors import DiagnosticsError
from recbole_anchor.evaluator.activity import activity_masks

#: Quantiles of per-user distributions written to the report.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclasses.dataclass
class Settings:
    """What the diagnostics sample and the thresholds they use."""

    users: int = 2000  # users sampled (seeded) among those with training items
    pairs: int = 50000  # user pairs for the geometry
    mask_draws: int = 10  # R masking draws for the drift
    knn: int = 20  # k of the latent nearest neighbours
    near_quantile: float = 0.05  # latent-near: W2 below this quantile of all pairs
    far_jaccard: float = 0.05  # input-far: Jaccard similarity below this
    probes: int = 8  # Hutchinson probes for the curvature L
    seed: int = 2020

    def steps(self):
        """Progress steps one model's diagnostics take."""
        return 4 + self.mask_draws


def diagnose(model, dataset, settings, progress=None):
    """All diagnostics of ``model`` on the training interactions of ``dataset``.

    Returns:
        (dict, dict): the report (plain numbers, per activity group, with ``all``
        first) and the arrays the pictures need.
    """
    posterior = posterior_of(model)
    matrix = training_matrix(dataset)
    users = sample_users(matrix, settings.users, settings.seed)
    if len(users) < 3:
        raise DiagnosticsError(
            f"only {len(users)} users have training interactions; the diagnostics need 3 or more"
        )
    sample = matrix[users]
    counts = np.diff(sample.indptr)
    groups = {"all": np.ones(len(users), dtype=bool), **activity_masks(counts)}
    rows = dense_rows(matrix, users)

    _advance(progress, "clean posteriors")
    mu, logvar = encode_all(posterior, rows, mask=False)
    mu, logvar = mu.float(), logvar.float()

    _advance(progress, "geometry")
    u, v = geometry.sample_pairs(len(users), settings.pairs, settings.seed)
    w2 = geometry.w2_squared(mu[u], logvar[u], mu[v], logvar[v]).sqrt().numpy()
    jaccard = geometry.jaccard_similarity(sample, u, v)
    near_w2 = float(np.quantile(w2, settings.near_quantile))
    geometry_by_group = {
        name: geometry.geometry_report(w2[mask[u]], jaccard[mask[u]], near_w2, settings.far_jaccard)
        for name, mask in groups.items()
    }

    if progress is not None:
        progress.set_description("masking draws")
    mu_draws, logvar_draws = drift.mask_draws(
        posterior, rows, settings.mask_draws, settings.seed, progress
    )
    _advance(progress, "latent neighbours")
    drift_variance = drift.drift_variance(mu_draws)
    spread = float(collapse.mu_variance(mu).sum())
    k = min(settings.knn, len(users) - 1)
    clean_neighbours = drift.nearest_neighbours(mu, logvar, k)
    across, with_clean = drift.neighbour_stability(mu_draws, logvar_draws, clean_neighbours, k)
    tau2 = None
    if posterior.anchor_weight > 0:
        curvature = drift.curvature(posterior, mu, rows, settings.probes, settings.seed)
        tau2 = drift.predicted_tau2(curvature, posterior.anchor_weight)

    _advance(progress, "collapse")
    e_bar = posterior.anchor_centroid(rows)
    anchor_distance = None if e_bar is None else collapse.anchor_distance(mu, e_bar.float())
    by_group = {}
    for name, mask in groups.items():
        index = torch.from_numpy(np.flatnonzero(mask))
        drift_part = {
            "drift_variance": drift_variance[index].mean(),
            "relative_drift": drift_variance[index].mean() / spread,
            "knn_overlap_across_draws": across[index].mean(),
            "knn_overlap_with_clean": with_clean[index].mean(),
        }
        if tau2 is not None:
            drift_part["curvature_L_median"] = curvature[index].median()
            drift_part["predicted_tau2"] = tau2[index].mean()
        collapse_part = collapse.collapse_report(mu[index], logvar[index])
        if anchor_distance is not None:
            collapse_part["anchor_distance"] = _distribution(anchor_distance[index])
        by_group[name] = {
            "users": int(mask.sum()),
            "geometry": geometry_by_group[name],
            "drift": drift_part,
            "collapse": collapse_part,
        }

    report = {
        "model": type(model).__name__,
        "posterior_family": posterior.family,
        "n_items": matrix.shape[1],
        "latent_dim": mu.shape[1],
        "dropout_prob": posterior.dropout_prob,
        "beta": posterior.beta,
        "gamma": posterior.gamma,
        "anchor_weight": posterior.anchor_weight,
        "users": len(users),
        "knn": k,
        "near_w2_threshold": near_w2,
        "mean_latent_spread": spread,
        "groups": by_group,
        "kl_per_dim": collapse.kl_per_dim(mu, logvar),
        "mu_variance_per_dim": collapse.mu_variance(mu),
    }
    arrays = {
        "user_ids": users,
        "mu": mu.numpy(),
        "groups": {name: mask for name, mask in groups.items() if name != "all"},
        "w2": w2,
        "jaccard_distance": 1.0 - jaccard,
        "near_w2": near_w2,
        "far_jaccard": settings.far_jaccard,
    }
    return to_plain(report), arrays


def compare(report, baseline):
    r"""Drift of ``report``'s model relative to ``baseline``'s (e.g. the same model
    with ``anchor_weight`` 0), per activity group: observed variance ratios against
    the predicted :math:`\tau^2` ratio."""
    comparison = {}
    for name, group in report["groups"].items():
        other = baseline["groups"].get(name)
        if other is None:
            continue
        ours, theirs = group["drift"], other["drift"]
        comparison[name] = {
            "drift_variance_ratio": _ratio(ours["drift_variance"], theirs["drift_variance"]),
            "relative_drift_ratio": _ratio(ours["relative_drift"], theirs["relative_drift"]),
            "predicted_tau2_ratio": _ratio(
                ours.get("predicted_tau2", 1.0), theirs.get("predicted_tau2", 1.0)
            ),
            "knn_overlap_across_draws": [
                ours["knn_overlap_across_draws"],
                theirs["knn_overlap_across_draws"],
            ],
        }
    return comparison


def to_plain(value):
    """Numbers, arrays and tensors as JSON data; NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(key): to_plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return to_plain(value.tolist())
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, (np.integer, bool)):
        return value if isinstance(value, bool) else int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _distribution(values):
    """Mean and quantiles of a per-user quantity."""
    values = values.double()
    quantiles = torch.quantile(values, torch.tensor(QUANTILES, dtype=torch.float64))
    return {"mean": values.mean(), **{str(q): x for q, x in zip(QUANTILES, quantiles)}}


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _advance(progress, stage):
    if progress is not None:
        progress.set_description(stage)
        progress.update(1)
