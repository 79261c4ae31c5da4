"""The diagnostics' pictures, as PNG files (matplotlib, t-SNE from scikit-learn when
installed).

- ``latent_map_pca[_compare].png``: users' posterior means projected on their first two
  principal components, coloured by activity group (and ``latent_map_tsne*.png``);
- ``w2_vs_input_distance[_compare].png``: 2-D histogram of W2 against the Jaccard
  distance of the item sets, and the W2 histograms of input-near and input-far pairs;
- ``drift.png``: drift variance, relative drift and k-NN overlap per activity group,
  side by side for the compared models;
- ``kl_per_dim.png``: per-dimension KL, sorted, with the active-unit variances.
"""
import importlib
import importlib.util
import os

import numpy as np

from recbole_anchor.errors import DiagnosticsError

GROUP_COLOURS = {
    "<5": "#bbbbbb",
    "5-10": "#1f77b4",
    "11-50": "#2ca02c",
    "51-100": "#ff7f0e",
    ">100": "#d62728",
}


def require_matplotlib():
    """pyplot with the file-only Agg backend; a one-line error when not installed."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise DiagnosticsError(
            "the pictures need matplotlib, which is not installed; "
            "pip install matplotlib, or pass --no-plots"
        ) from None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def tsne_available():
    return importlib.util.find_spec("sklearn") is not None


def latent_maps(arrays, title, output_dir, suffix="", tsne=True, seed=2020):
    """PCA map (and t-SNE map) of the posterior means; returns the files written."""
    mu = arrays["mu"] - arrays["mu"].mean(axis=0)
    _, _, components = np.linalg.svd(mu, full_matrices=False)
    maps = {"pca": (mu @ components[:2].T, "PC 1", "PC 2")}
    if tsne and tsne_available():
        from sklearn.manifold import TSNE

        # t-SNE of the first 50 principal components, 500 iterations: the usual
        # speed-up, a few seconds for 2,000 users.
        reduced = mu @ components[:50].T
        perplexity = min(30.0, (len(mu) - 1) / 3)
        tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, max_iter=500, random_state=seed)
        maps["tsne"] = (tsne.fit_transform(reduced), "t-SNE 1", "t-SNE 2")
    written = []
    for method, (points, xlabel, ylabel) in maps.items():
        path = os.path.join(output_dir, f"latent_map_{method}{suffix}.png")
        _scatter_by_group(points, arrays["groups"], f"{title}: posterior means ({method.upper()})", xlabel, ylabel, path)
        written.append(path)
    return written


def _scatter_by_group(points, groups, title, xlabel, ylabel, path):
    plt = require_matplotlib()
    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    for name, mask in groups.items():
        axes.scatter(
            points[mask, 0], points[mask, 1], s=6, alpha=0.6,
            color=GROUP_COLOURS.get(name), label=f"{name} ({int(mask.sum())})",
        )
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.legend(title="training interactions", markerscale=2.5, fontsize=8)
    _save(figure, path)


def w2_vs_input_distance(arrays, title, output_dir, suffix=""):
    """2-D histogram of W2 against Jaccard distance, and W2 of near/far pairs."""
    plt = require_matplotlib()
    from matplotlib.colors import LogNorm

    w2, distance = arrays["w2"], arrays["jaccard_distance"]
    far = distance > 1.0 - arrays["far_jaccard"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _, _, _, image = left.hist2d(distance, w2, bins=60, norm=LogNorm(), cmap="viridis")
    figure.colorbar(image, ax=left, label="pairs")
    left.axhline(arrays["near_w2"], color="white", linestyle="--", linewidth=1)
    left.set(
        title=f"{title}: W2 vs input distance", xlabel="Jaccard distance of item sets",
        ylabel="W2 between posteriors",
    )
    bins = np.linspace(w2.min(), w2.max(), 60)
    right.hist(w2[~far], bins=bins, alpha=0.6, density=True, label=f"input-near pairs ({int((~far).sum())})")
    right.hist(w2[far], bins=bins, alpha=0.6, density=True, label=f"input-far pairs ({int(far.sum())})")
    right.axvline(arrays["near_w2"], color="black", linestyle="--", linewidth=1, label="latent-near threshold")
    right.set(title="W2 of input-near and input-far pairs", xlabel="W2", ylabel="density")
    right.legend(fontsize=8)
    path = os.path.join(output_dir, f"w2_vs_input_distance{suffix}.png")
    _save(figure, path)
    return [path]


def drift_bars(reports, output_dir, comparison=None):
    """Drift per activity group, one bar per model; ``reports`` maps a label to a
    report, ``comparison`` is :func:`recbole_anchor.diagnose.report.compare`'s."""
    plt = require_matplotlib()
    names = [name for name in next(iter(reports.values()))["groups"]]
    panels = (
        ("drift_variance", "drift variance  sum_j Var_r[mu_j]"),
        ("relative_drift", "relative drift  (drift / Var_x[mu])"),
        ("knn_overlap_across_draws", "k-NN Jaccard overlap across draws"),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 4.5))
    width = 0.8 / len(reports)
    x = np.arange(len(names))
    for column, (label, report) in enumerate(reports.items()):
        for ax, (key, ylabel) in zip(axes, panels):
            values = [report["groups"].get(n, {}).get("drift", {}).get(key) for n in names]
            values = [np.nan if v is None else v for v in values]
            ax.bar(x + (column - (len(reports) - 1) / 2) * width, values, width, label=label)
            ax.set_xticks(x, names)
            ax.set(xlabel="training interactions", ylabel=ylabel)
    axes[-1].legend(fontsize=8)
    if comparison is not None:
        overall = comparison["all"]
        figure.suptitle(
            "masking drift, all users: observed drift variance ratio "
            f"{_text(overall['drift_variance_ratio'])} (relative drift "
            f"{_text(overall['relative_drift_ratio'])}), predicted tau^2 ratio "
            f"{_text(overall['predicted_tau2_ratio'])}"
        )
    else:
        figure.suptitle("masking drift per activity group")
    path = os.path.join(output_dir, "drift.png")
    _save(figure, path)
    return [path]


def kl_per_dim(reports, output_dir):
    """Sorted per-dimension KL and Var_x[mu_j] of each model."""
    plt = require_matplotlib()
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, report in reports.items():
        left.plot(np.sort(report["kl_per_dim"])[::-1], label=label)
        right.plot(np.sort(report["mu_variance_per_dim"])[::-1], label=label)
    right.axhline(0.01, color="black", linestyle="--", linewidth=1, label="active threshold 0.01")
    left.set(title="KL per latent dimension (sorted)", xlabel="dimension rank", ylabel="KL_j")
    right.set(title="Var_x[mu_j] (sorted)", xlabel="dimension rank", ylabel="variance", yscale="log")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    path = os.path.join(output_dir, "kl_per_dim.png")
    _save(figure, path)
    return [path]


def _text(value):
    return "-" if value is None else f"{value:.3f}"


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    require_matplotlib().close(figure)
