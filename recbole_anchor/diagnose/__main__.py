"""``python -m recbole_anchor.diagnose --checkpoint=saved/<run>.pth``: latent-geometry
diagnostics of a trained VAE recommender; see :mod:`recbole_anchor.diagnose`.

Bad input ends with a one-line error on stderr and exit status 2.
"""
import argparse
import dataclasses
import json
import logging
import os
import sys
import warnings

from tqdm import tqdm

from recbole_anchor.errors import CheckpointError, DiagnosticsError, RecBoleAnchorError
from recbole_anchor.stop_signals import stop_on_signals

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser():
    from recbole_anchor.diagnose.report import Settings

    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m recbole_anchor.diagnose",
        description=(
            "Posterior geometry, masking drift and collapse of a trained AnchorMultVAE, "
            "AnchorRecVAE, MultiVAE or RecVAE checkpoint, per user activity group; writes "
            "diagnostics.json and PNG pictures."
        ),
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint (.pth) to diagnose")
    parser.add_argument(
        "--compare-checkpoint", "--compare_checkpoint", dest="compare_checkpoint",
        help="a second checkpoint on the same dataset (e.g. the same model with "
        "--anchor_weight=0); drift is reported as a ratio against it",
    )
    parser.add_argument(
        "--output_dir", "--output-dir", dest="output_dir",
        help="folder for diagnostics.json and the PNGs (default: "
        "results/diagnostics/<checkpoint name>)",
    )
    numbers = (
        ("users", int, "users sampled (seeded)"),
        ("pairs", int, "user pairs for the W2 geometry"),
        ("mask_draws", int, "masking draws R for the drift"),
        ("knn", int, "k of the latent nearest neighbours"),
        ("near_quantile", float, "latent-near pairs: W2 below this quantile"),
        ("far_jaccard", float, "input-far pairs: Jaccard similarity below this"),
        ("probes", int, "Hutchinson probes for the curvature L of tau^2"),
        ("seed", int, "seed of every sample and masking draw"),
    )
    for name, kind, text in numbers:
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        default = getattr(defaults, name)
        parser.add_argument(*flags, dest=name, type=kind, default=default, help=f"{text} (default {default})")
    parser.add_argument("--no-plots", "--no_plots", dest="plots", action="store_false", help="write only diagnostics.json")
    parser.add_argument("--no-tsne", "--no_tsne", dest="tsne", action="store_false", help="skip the t-SNE map")
    parser.add_argument(
        "--trust-checkpoint", "--trust_checkpoint", dest="trust_checkpoint", action="store_true",
        help="allow a plain RecBole checkpoint that pickles objects (runs code stored in the file)",
    )
    parser.add_argument("--verbose", action="store_true", help="show RecBole's log while loading")
    return parser


def check_settings(settings):
    """One-line errors for settings the diagnostics cannot use."""
    for name, smallest in (("users", 3), ("pairs", 1), ("mask_draws", 2), ("knn", 1), ("probes", 1)):
        if getattr(settings, name) < smallest:
            raise DiagnosticsError(f"--{name}={getattr(settings, name)} is too small; use {smallest} or more")
    if not 0 < settings.near_quantile < 1:
        raise DiagnosticsError(f"--near_quantile={settings.near_quantile} must be in (0, 1)")
    if not 0 < settings.far_jaccard <= 1:
        raise DiagnosticsError(f"--far_jaccard={settings.far_jaccard} must be in (0, 1]")


def load(path, trust_checkpoint, verbose):
    """Config, model and training dataset of a checkpoint (RecBole's log and
    pandas' warnings about RecBole's code muted unless ``verbose``)."""
    from recbole_anchor import load_data_and_model

    with warnings.catch_warnings():
        if not verbose:
            logging.disable(logging.INFO)
            warnings.simplefilter("ignore")
        try:
            config, model, _, train_data, _, _ = load_data_and_model(
                path, trust_checkpoint=trust_checkpoint
            )
        finally:
            logging.disable(logging.NOTSET)
    return config, model.cpu(), train_data._dataset


def run(args):
    """Diagnose the checkpoint(s), write diagnostics.json and the pictures; returns
    the diagnostics dict."""
    from recbole_anchor.diagnose import plots
    from recbole_anchor.diagnose.report import Settings, compare, diagnose

    settings = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})
    check_settings(settings)
    if args.plots:
        plots.require_matplotlib()
    name = os.path.splitext(os.path.basename(args.checkpoint))[0]
    output_dir = args.output_dir or os.path.join("results", "diagnostics", name)
    checkpoints = [args.checkpoint] + ([args.compare_checkpoint] if args.compare_checkpoint else [])
    for path in checkpoints:
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint '{path}' does not exist")

    results, arrays, datasets = [], [], []
    steps = len(checkpoints) * (1 + settings.steps()) + int(args.plots)
    with tqdm(total=steps, desc="diagnose", unit="step", file=sys.stderr) as progress:
        for path in checkpoints:
            progress.set_description(f"loading {os.path.basename(path)}")
            config, model, dataset = load(path, args.trust_checkpoint, args.verbose)
            progress.update(1)
            datasets.append((config["dataset"], dataset.user_num, dataset.item_num))
            report, data = diagnose(model, dataset, settings, progress)
            results.append(report)
            arrays.append(data)
        if len(datasets) == 2 and datasets[0] != datasets[1]:
            raise DiagnosticsError(
                f"--compare-checkpoint was trained on {datasets[1][0]} ({datasets[1][1]} users, "
                f"{datasets[1][2]} items), --checkpoint on {datasets[0][0]} ({datasets[0][1]} users, "
                f"{datasets[0][2]} items); compare checkpoints of the same dataset"
            )

        diagnostics = {
            "checkpoint": args.checkpoint,
            "dataset": datasets[0][0],
            "settings": dataclasses.asdict(settings),
            "model": results[0],
        }
        if len(results) == 2:
            diagnostics["compare_checkpoint"] = args.compare_checkpoint
            diagnostics["compare"] = results[1]
            diagnostics["comparison"] = compare(results[0], results[1])

        os.makedirs(output_dir, exist_ok=True)
        files = []
        if args.plots:
            progress.set_description("pictures")
            labels = [_label(path, report) for path, report in zip(checkpoints, results)]
            for index, (label, data) in enumerate(zip(labels, arrays)):
                suffix = "" if index == 0 else "_compare"
                files += plots.latent_maps(data, label, output_dir, suffix, args.tsne, settings.seed)
                files += plots.w2_vs_input_distance(data, label, output_dir, suffix)
            files += plots.drift_bars(
                dict(zip(labels, results)), output_dir, diagnostics.get("comparison")
            )
            files += plots.kl_per_dim(dict(zip(labels, results)), output_dir)
            progress.update(1)
        diagnostics["pictures"] = [os.path.basename(f) for f in files]
        path = os.path.join(output_dir, "diagnostics.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(diagnostics, handle, indent=2)
    print(summary(diagnostics, path))
    return diagnostics


def _label(path, report):
    return f"{os.path.splitext(os.path.basename(path))[0]} ({report['model']}, lambda_A={report['anchor_weight']:g})"


def summary(diagnostics, path):
    """A short table per model for the terminal."""
    lines = []
    sections = [("model", diagnostics["checkpoint"])]
    if "compare" in diagnostics:
        sections.append(("compare", diagnostics["compare_checkpoint"]))
    header = f"  {'group':<8}{'users':>6}{'spearman':>10}{'near-far':>10}{'drift':>10}{'rel.drift':>10}{'kNN-ovl':>9}{'active':>8}{'KL':>10}"
    for key, checkpoint in sections:
        report = diagnostics[key]
        lines.append(f"{checkpoint}: {report['model']}, lambda_A={report['anchor_weight']:g}, dropout={report['dropout_prob']:g}")
        lines.append(header)
        for group, numbers in report["groups"].items():
            g, d, c = numbers["geometry"], numbers["drift"], numbers["collapse"]
            lines.append(
                f"  {group:<8}{numbers['users']:>6}{_f(g['spearman_w2_vs_jaccard_distance']):>10}"
                f"{_f(g['near_far_share']):>10}{_f(d['drift_variance']):>10}{_f(d['relative_drift']):>10}"
                f"{_f(d['knn_overlap_across_draws']):>9}{_f(c['active_units'], 'd'):>8}{_f(c['mean_kl']):>10}"
            )
    for group, numbers in diagnostics.get("comparison", {}).items():
        if group == "all":
            lines.append(
                f"drift variance ratio {_f(numbers['drift_variance_ratio'])} "
                f"(relative {_f(numbers['relative_drift_ratio'])}), "
                f"predicted tau^2 ratio {_f(numbers['predicted_tau2_ratio'])}"
            )
    lines.append(f"wrote {path}" + (f" and {len(diagnostics['pictures'])} PNGs" if diagnostics["pictures"] else ""))
    return "\n".join(lines)


def _f(value, spec=".3f"):
    return "-" if value is None else format(value, spec)


def main(argv=None):
    with stop_on_signals():  # kill and kill -INT stop it as Ctrl-C does
        return _main(argv)


def _main(argv):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except RecBoleAnchorError as err:
        print(f"diagnose: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("diagnose: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
