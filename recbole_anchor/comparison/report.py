"""Comparison tables from run records: CSV, Markdown, LaTeX and a plot.

- ``comparison.csv``: one row per model, seed and metric (failed runs: empty value,
  status ``failed`` and the reason);
- ``comparison.md``: mean +- std over seeds per model and metric, best mean in bold,
  then, for each baseline, every other model against it: relative change of the mean
  and the p-value of a paired Wilcoxon signed-rank test over test users, pooled over
  seeds;
- ``comparison.tex``: the mean +- std table for papers (booktabs);
- ``comparison.png``: each metric per model, bars at the mean with std error bars;
- ``hyperparameters.csv``: per model, each tuned parameter's chosen value and default,
  with the budget and the validation scores (tuned comparisons only); ``comparison.md``
  has the same as a table, or says that every model ran at its defaults.
"""
import csv
import math
import os
from collections import OrderedDict

import numpy as np

from recbole_anchor.comparison.significance import paired_wilcoxon, relative_change


def summarize(records, models, metrics):
    """{model: {metric: (mean, std, n)}} over the seeds of successful runs (sample std,
    0 for one seed)."""
    table = OrderedDict()
    for model in models:
        runs = [r for r in records if r["model"] == model and r["status"] == "ok"]
        table[model] = {}
        for metric in metrics:
            values = np.array([r["test"][metric] for r in runs if metric in r["test"]])
            if len(values):
                std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                table[model][metric] = (float(values.mean()), std, len(values))
    return table


def significance(records, models, metrics, baseline):
    """{model: {metric: (relative change %, p-value)}} against ``baseline``, pairing
    each seed's per-user test values; only seeds where both runs succeeded count."""
    by_key = {(r["model"], r["seed"]): r for r in records if r["status"] == "ok"}
    means = summarize(records, models, metrics)
    result = OrderedDict()
    for model in models:
        if model == baseline:
            continue
        result[model] = {}
        for metric in metrics:
            ours, theirs = [], []
            for (name, seed), record in by_key.items():
                other = by_key.get((baseline, seed))
                if name != model or other is None:
                    continue
                if metric in record.get("test_per_user", {}) and metric in other.get(
                    "test_per_user", {}
                ):
                    ours += record["test_per_user"][metric]
                    theirs += other["test_per_user"][metric]
            if not ours or metric not in means[model] or metric not in means[baseline]:
                continue
            change = relative_change(means[model][metric][0], means[baseline][metric][0])
            result[model][metric] = (change, paired_wilcoxon(ours, theirs))
    return result


def _best(table, metric, bigger=True):
    scored = [(stats[metric][0], model) for model, stats in table.items() if metric in stats]
    if not scored:
        return None
    return (max if bigger else min)(scored)[1]


def _cell(stats, bold, fmt="md"):
    mean, std, _ = stats
    text = f"{mean:.4f} ± {std:.4f}" if fmt == "md" else f"{mean:.4f} $\\pm$ {std:.4f}"
    if bold:
        return f"**{text}**" if fmt == "md" else f"\\textbf{{{text}}}"
    return text


def _p_text(p):
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def write_csv(path, records, metrics):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "seed", "metric", "value", "status", "reason"])
        for record in sorted(records, key=lambda r: (r["model"], r["seed"])):
            for metric in metrics:
                value = record.get("test", {}).get(metric, "") if record["status"] == "ok" else ""
                writer.writerow(
                    [record["model"], record["seed"], metric, value, record["status"],
                     record.get("reason", "")]
                )


def _value_text(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def hyperparameter_lines(models, tuning):
    """Markdown of what was compared: the chosen values per model, with the budget."""
    if not tuning:
        return ["Hyperparameters: not tuned. Every model ran at its defaults (model yaml, "
                "dataset preset, command line); `--tune=N` tunes each with N trials first."]
    some = next(iter(tuning.values()))
    lines = [
        f"Hyperparameters: every model tuned with the same budget, {some['trials']} trials "
        f"(the first at its defaults), on the validation users of seed {some['seed']}'s "
        "split; the chosen values then ran on every seed.",
        "",
        "| model | chosen (default) | trials: complete / pruned / failed | validation: chosen (defaults) |",
        "|---|---|---|---|",
    ]
    for model in models:
        record = tuning[model]
        if record.get("note"):
            lines.append(f"| {model} | {record['note']} | – | – |")
            continue
        defaults = record.get("defaults", {})
        chosen = ", ".join(
            f"{name}={_value_text(value)} ({_value_text(defaults.get(name, '?'))})"
            for name, value in record["params"].items()
        )
        counts = f"{record['n_complete']} / {record['n_pruned']} / {record['n_failed']}"
        default_score = record.get("default_valid_score")
        scores = f"{record['best_valid_score']:.4f} (" + (
            f"{default_score:.4f})" if default_score is not None else "not complete)")
        lines.append(f"| {model} | {chosen} | {counts} | {scores} |")
    return lines


def write_hyperparameters_csv(path, models, tuning):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "parameter", "value", "default", "trials", "n_complete",
                         "best_valid_score", "default_valid_score", "valid_metric", "note"])
        for model in models:
            record = tuning[model]
            common = [record["trials"], record["n_complete"], record["best_valid_score"],
                      record["default_valid_score"], record.get("valid_metric", "")]
            if not record["params"]:
                writer.writerow([model, "", "", ""] + common + [record.get("note", "")])
            for name, value in record["params"].items():
                writer.writerow([model, name, value, record["defaults"].get(name, "")]
                                + common + [""])


def significance_lines(records, models, metrics, baseline):
    """Markdown of every model against ``baseline`` (none when nothing pairs)."""
    tests = significance(records, models, metrics, baseline)
    if not tests:
        return []
    lines = ["", f"Against {baseline}: relative change of the mean, and the p-value of a "
             "paired Wilcoxon signed-rank test over test users pooled over seeds.", ""]
    lines.append("| model | " + " | ".join(metrics) + " |")
    lines.append("|---|" + "---|" * len(metrics))
    for model, by_metric in tests.items():
        cells = [
            f"{by_metric[m][0]:+.1f}% ({_p_text(by_metric[m][1])})" if m in by_metric else "–"
            for m in metrics
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def markdown(records, models, metrics, baselines, title, group_rows=None, tuning=None):
    """The comparison as Markdown (see the module docstring); ``baselines``: a model or
    a list of models, one significance table each."""
    baselines = [baselines] if isinstance(baselines, str) else list(baselines)
    table = summarize(records, models, metrics)
    seeds = sorted({r["seed"] for r in records})
    lines = [f"# {title}", "", f"Test results, mean ± std over seeds {seeds}.", ""]
    if not metrics:
        lines.append("No run succeeded.")
        metrics_rows = []
    else:
        metrics_rows = models
    if metrics_rows:
        lines.append("| model | " + " | ".join(metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
    for model in metrics_rows:
        cells = []
        for metric in metrics:
            stats = table[model].get(metric)
            cells.append(_cell(stats, model == _best(table, metric)) if stats else "failed")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")

    for baseline in baselines:
        lines += significance_lines(records, models, metrics, baseline)
    lines += [""] + hyperparameter_lines(models, tuning)
    if group_rows:
        lines += ["", group_rows]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['model']}, seed {r['seed']}: {r.get('reason', '')}" for r in failed]
    return "\n".join(lines) + "\n"


def _tex(text):
    return str(text).replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")


def latex(records, models, metrics, caption):
    table = summarize(records, models, metrics)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_tex(caption)}}}",
        "\\begin{tabular}{l" + "c" * len(metrics) + "}",
        "\\toprule",
        "Model & " + " & ".join(_tex(m) for m in metrics) + " \\\\",
        "\\midrule",
    ]
    for model in models:
        cells = [
            _cell(table[model][m], model == _best(table, m), fmt="tex") if m in table[model] else "--"
            for m in metrics
        ]
        lines.append(f"{_tex(model)} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def plot(path, records, models, metrics, title):
    """Bars: metrics on the x axis, one bar per model at the mean, std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarize(records, models, metrics)
    width = 0.8 / max(len(models), 1)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(metrics) * max(1, len(models) / 3)), 4))
    positions = np.arange(len(metrics))
    for index, model in enumerate(models):
        means = [table[model].get(m, (math.nan, 0, 0))[0] for m in metrics]
        stds = [table[model].get(m, (0, 0, 0))[1] for m in metrics]
        axes.bar(positions + index * width - 0.4 + width / 2, means, width, yerr=stds,
                 capsize=3, label=model)
    axes.set_xticks(positions)
    axes.set_xticklabels(metrics)
    axes.set_ylabel("test value (mean ± std over seeds)")
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(output_dir, records, models, metrics, baselines, title, group_rows=None,
                 tuning=None):
    """Write comparison.csv, .md, .tex and .png (and with ``tuning``
    hyperparameters.csv) into ``output_dir``; return their paths."""
    paths = {ext: os.path.join(output_dir, f"comparison.{ext}") for ext in ("csv", "md", "tex", "png")}
    write_csv(paths["csv"], records, metrics)
    if tuning:
        paths["hyperparameters"] = os.path.join(output_dir, "hyperparameters.csv")
        write_hyperparameters_csv(paths["hyperparameters"], models, tuning)
    with open(paths["md"], "w", encoding="utf-8") as handle:
        handle.write(markdown(records, models, metrics, baselines, title, group_rows, tuning))
    with open(paths["tex"], "w", encoding="utf-8") as handle:
        handle.write(latex(records, models, metrics, title))
    plot(paths["png"], records, models, metrics, title)
    return paths
