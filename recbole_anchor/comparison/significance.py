"""Paired significance of a model against a baseline over the same test users."""
import numpy as np
from scipy import stats


def paired_wilcoxon(values, baseline_values):
    r"""Two-sided Wilcoxon signed-rank test of per-user metric values against the
    baseline's on the same users (pooled over seeds by concatenation).

    Returns the p-value; 1.0 when every paired difference is zero.
    """
    values = np.asarray(values, dtype=float)
    baseline_values = np.asarray(baseline_values, dtype=float)
    if values.shape != baseline_values.shape:
        raise ValueError(
            f"paired test needs the same users: {values.shape} vs {baseline_values.shape}"
        )
    if not np.any(values != baseline_values):
        return 1.0
    return float(stats.wilcoxon(values, baseline_values).pvalue)


def relative_change(mean, baseline_mean):
    """Relative change of ``mean`` over ``baseline_mean`` in percent."""
    if baseline_mean == 0:
        return float("nan")
    return 100.0 * (mean - baseline_mean) / baseline_mean
