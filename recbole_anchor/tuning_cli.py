"""Command line of ``run_hyper_anchor.py``: the flags of RecBole's ``run_hyper.py``.

``--config_files``, ``--params_file``, ``--output_file``, ``--display_file`` and
``--tool`` as in RecBole, plus ``--model``, ``--dataset``, ``--algo``
(exhaustive, random, bayes), ``--max_evals`` and ``--early_stop``; any other
``--key=value`` is a fixed config override for every trial. Writes RecBole's result
file (``--output_file``), ``<output>.trials.csv`` (one row per trial, failed ones with
their reason) and ``<output>.best.yaml`` (best parameters and results).
"""
import argparse
import os
import sys

from recbole_anchor.cli import split_overrides
from recbole_anchor.errors import InvalidConfigError, RecBoleAnchorError

EXIT_BAD_INPUT = 2


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run_hyper_anchor.py",
        description="Tune a plugin or RecBole model with RecBole's HyperTuning.",
    )
    parser.add_argument("--model", "-m", default=None, help="model name (or set it in a config file)")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name (or in a config file)")
    parser.add_argument("--config_files", default=None, help="fixed yaml config files, space-separated")
    parser.add_argument("--params_file", required=True, help="search space in RecBole's .hyper format")
    parser.add_argument("--output_file", default="hyper_example.result", help="result file")
    parser.add_argument("--display_file", default=None, help="html plot of the search (plotly)")
    parser.add_argument("--tool", default="hyperopt", help="hyperopt (default) or ray")
    parser.add_argument("--algo", default="exhaustive", help="exhaustive, random or bayes (TPE)")
    parser.add_argument("--max_evals", type=int, default=100, help="trials (random, bayes)")
    parser.add_argument("--early_stop", type=int, default=10, help="stop after N trials without progress")
    return parser


def read_params_file(path):
    """``[(name, type, value_text)]`` of a RecBole .hyper file (``name type value``)."""
    if not os.path.isfile(path):
        raise InvalidConfigError(f"params file '{path}' does not exist; check --params_file")
    params = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 3 or parts[1] not in ("choice", "uniform", "quniform", "loguniform"):
                raise InvalidConfigError(
                    f"{path}:{number}: expected 'name choice|uniform|quniform|loguniform "
                    f"values', got {line.strip()!r}"
                )
            params.append((parts[0], parts[1], "".join(parts[2:])))
    if not params:
        raise InvalidConfigError(f"{path}: no parameters to search")
    return params


def fixed_config(args, extra):
    """Config overrides shared by every trial."""
    fixed = {}
    if args.model:
        fixed["model"] = args.model
    if args.dataset:
        fixed["dataset"] = args.dataset
    for override in split_overrides(extra):
        key, _, value = override[2:].partition("=")
        fixed[key] = value
    return fixed


def check_fixed_config(fixed, config_files):
    """Fail once, before the search, on a bad model, dataset or config file."""
    from recbole_anchor.config import Config
    from recbole_anchor.data.atomic_files import check_dataset_files

    check_dataset_files(Config(config_dict=fixed, config_file_list=config_files, cmd_args=[]))


def run_hyperopt(args, fixed, config_files):
    from recbole_anchor.tuning import ALGOS, AnchorHyperTuning, check_exhaustive_space, objective_function

    if args.algo not in ALGOS:
        raise InvalidConfigError(f"unknown --algo={args.algo}; use one of {', '.join(ALGOS)}")
    base = os.path.splitext(args.output_file)[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)

    def objective(params, config_file_list):
        return objective_function({**fixed, **params}, config_file_list)

    tuner = AnchorHyperTuning(
        objective,
        trials_file=base + ".trials.csv",
        params_file=args.params_file,
        fixed_config_file_list=config_files,
        display_file=args.display_file,
        algo=args.algo,
        max_evals=args.max_evals,
        early_stop=args.early_stop,
    )
    if args.algo == "exhaustive":
        check_exhaustive_space(tuner.space)
    tuner.run()
    tuner.export_result(output_file=args.output_file)
    tuner.export_best(base + ".best.yaml")
    failed = sum(row["status"] == "failed" for row in tuner.trials)
    print(f"{len(tuner.trials)} trials ({failed} failed); best params: {tuner.best_params}")
    print(f"wrote {args.output_file}, {base}.trials.csv, {base}.best.yaml")
    return 0 if tuner.best_params is not None else 1


def run_ray(args, fixed, config_files):
    """The same search on Ray Tune (local, or the cluster in RAY_ADDRESS)."""
    try:
        from ray import tune
    except Exception as err:  # Ray missing, or RecBole's Ray 2.6.3 broken on this stack
        raise RecBoleAnchorError(
            f"--tool=ray needs a working Ray Tune ({type(err).__name__}: {err}); install "
            "it with pip install '.[ray]', or use --tool=hyperopt"
        ) from None
    from recbole_anchor.tuning import as_lists, objective_function

    builders = {
        "choice": lambda v: tune.choice(eval(v)),
        "uniform": lambda v: tune.uniform(*map(float, v.split(","))),
        "quniform": lambda v: tune.quniform(*map(float, v.split(","))),
        "loguniform": lambda v: tune.loguniform(*(10 ** float(x) for x in v.split(","))),
    }
    space = {name: builders[kind](value) for name, kind, value in read_params_file(args.params_file)}

    def trainable(params):
        result = objective_function({**fixed, **as_lists(params)}, config_files)
        tune.report(best_valid_score=result["best_valid_score"], **result["test_result"])

    analysis = tune.run(trainable, config=space, num_samples=args.max_evals)
    frame = analysis.results_df
    base = os.path.splitext(args.output_file)[0]
    frame.to_csv(base + ".trials.csv")
    print(analysis.get_best_config(metric="best_valid_score", mode="max"))
    return 0


def main(argv=None):
    args, extra = build_parser().parse_known_args(argv)
    try:
        config_files = args.config_files.split() if args.config_files else None
        read_params_file(args.params_file)
        fixed = fixed_config(args, extra)
        check_fixed_config(fixed, config_files)
        tool = args.tool.lower()
        if tool == "hyperopt":
            return run_hyperopt(args, fixed, config_files)
        if tool == "ray":
            return run_ray(args, fixed, config_files)
        raise InvalidConfigError(f"unknown --tool={args.tool}; use hyperopt or ray")
    except RecBoleAnchorError as err:
        print(f"run_hyper_anchor: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("run_hyper_anchor: interrupted; finished trials are in the trials table", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
