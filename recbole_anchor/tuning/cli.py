"""Command line of ``run_hyper_anchor.py``: RecBole's ``run_hyper.py`` flags, on Optuna or hyperopt.

``--config_files``, ``--params_file``, ``--output_file``, ``--display_file`` and
``--tool`` as in RecBole, plus ``--model`` and ``--dataset``; any other ``--key=value``
is a fixed config override for every trial.

- ``--tool=optuna`` (the default): :func:`recbole_anchor.tuning.optuna_search.run_study`
  with ``--storage``, ``--study_name``, ``--n_trials`` (this worker's share),
  ``--sampler``, ``--pruner`` and ``--seed`` (the sampler's); several workers started
  with the same storage and study name share the study. ``--model`` may be a variant,
  ``Name[key=value;...]``: its keys are fixed and left out of the search space.
- ``--tool=hyperopt``: RecBole's ``HyperTuning`` in this process, with ``--algo``
  (exhaustive, random, bayes), ``--max_evals`` and ``--early_stop``.

Both write RecBole's result file (``--output_file``), ``<output>.trials.csv`` (one row
per trial, failed ones with their reason) and ``<output>.best.yaml``; Optuna also
``<output>.history.png`` and ``<output>.importances.png``.
"""
import argparse
import os
import sys

from recbole_anchor.command_line import cmd_values, split_overrides
from recbole_anchor.errors import InvalidConfigError, RecBoleAnchorError
from recbole_anchor.stop_signals import stop_on_signals
from recbole_anchor.tuning.space import read_params_file
from recbole_anchor.tuning.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL

EXIT_BAD_INPUT = 2


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run_hyper_anchor.py",
        description="Tune a plugin or RecBole model on Optuna (many workers) or hyperopt.",
    )
    parser.add_argument("--model", "-m", default=None, help="model name or variant Name[k=v;...]")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name (or in a config file)")
    parser.add_argument("--config_files", default=None, help="fixed yaml config files, space-separated")
    parser.add_argument("--params_file", required=True, help="search space in RecBole's .hyper format")
    parser.add_argument("--output_file", default="hyper_example.result", help="result file")
    parser.add_argument("--tool", default=None, help="optuna (default), hyperopt, or ray (refused)")
    optuna_flags = parser.add_argument_group("--tool=optuna")
    optuna_flags.add_argument("--storage", default=None,
                              help="study database URL or journal file (default: <output>.db)")
    optuna_flags.add_argument("--study_name", default=None, help="default: <model>-<dataset>")
    optuna_flags.add_argument("--n_trials", type=int, default=20, help="this worker's trials")
    optuna_flags.add_argument("--sampler", default="tpe", help="tpe, random or grid")
    optuna_flags.add_argument("--pruner", default="median", help="median, hyperband or none")
    optuna_flags.add_argument("--seed", type=int, default=None, help="the sampler's seed")
    optuna_flags.add_argument("--heartbeat_interval", type=int, default=HEARTBEAT_INTERVAL,
                              help="seconds between a running trial's heartbeats")
    optuna_flags.add_argument("--grace_period", type=int, default=GRACE_PERIOD,
                              help="seconds without heartbeat before a trial counts as dead")
    hyperopt_flags = parser.add_argument_group("--tool=hyperopt")
    hyperopt_flags.add_argument("--display_file", default=None, help="html plot of the search")
    hyperopt_flags.add_argument("--algo", default="exhaustive", help="exhaustive, random or bayes")
    hyperopt_flags.add_argument("--max_evals", type=int, default=100, help="trials (random, bayes)")
    hyperopt_flags.add_argument("--early_stop", type=int, default=10,
                                help="stop after N trials without progress")
    return parser


def fixed_config(args, extra):
    """Config overrides shared by every trial."""
    fixed = {}
    if args.model:
        fixed["model"] = args.model
    if args.dataset:
        fixed["dataset"] = args.dataset
    fixed.update(cmd_values(split_overrides(extra)))
    return fixed


def check_fixed_config(fixed, config_files):
    """Fail once, before the search, on a bad model, dataset or config file."""
    from recbole_anchor.config import Config
    from recbole_anchor.data.atomic_files import check_dataset_files

    check_dataset_files(Config(config_dict=fixed, config_file_list=config_files, cmd_args=[]))


def run_hyperopt(args, fixed, config_files):
    from recbole_anchor.tuning.hyperopt_search import (
        ALGOS,
        AnchorHyperTuning,
        check_exhaustive_space,
        objective_function,
    )

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


def apply_variant(fixed, space, params_file):
    """A model variant ``Name[key=value;...]``: its keys become fixed and leave the space."""
    from recbole_anchor.command_line import parse_variant
    from recbole_anchor.tuning.space import without_keys

    if "model" not in fixed:
        return fixed, space
    model, overrides = parse_variant(fixed["model"])
    space = without_keys(space, overrides)
    if not space:
        raise InvalidConfigError(
            f"model variant {fixed['model']} fixes every parameter of {params_file}"
        )
    return {**fixed, "model": model, **overrides}, space


def run_optuna(args, fixed, space, config_files):
    from recbole_anchor.tuning.optuna_search import run_study

    if args.n_trials < 1:
        raise InvalidConfigError(f"--n_trials={args.n_trials}: give at least 1 trial")
    base = os.path.splitext(args.output_file)[0]
    study_name = args.study_name or f"{args.model or fixed.get('model', 'model')}-{args.dataset}"
    summary = run_study(
        fixed,
        space,
        args.n_trials,
        study_name=study_name,
        storage=args.storage,
        sampler=args.sampler.lower(),
        pruner=args.pruner.lower(),
        seed=args.seed,
        config_files=config_files,
        output_base=base,
        result_file=args.output_file,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
    )
    print(
        f"study '{study_name}': {summary['n_complete']} complete, {summary['n_pruned']} pruned, "
        f"{summary['n_failed']} failed; best params: {summary['best_params']} "
        f"(validation {summary['best_valid_score']})"
    )
    print(f"wrote {args.output_file}, {base}.trials.csv, {base}.best.yaml, {base}.*.png")
    return 0 if summary["best_params"] is not None else 1


def refuse_ray():
    raise RecBoleAnchorError(
        "--tool=ray is not supported: RecBole 1.2.1 pins Ray <= 2.6.3, which does not run on "
        "numpy 2 / setuptools >= 81; use --tool=optuna, which runs one study on many "
        "workers and machines"
    )


def main(argv=None):
    with stop_on_signals():  # kill and kill -INT stop it as Ctrl-C does
        return _main(argv)


def _main(argv):
    args, extra = build_parser().parse_known_args(argv)
    try:
        tool = (args.tool or "optuna").lower()
        if tool == "ray":
            refuse_ray()
        if tool not in ("optuna", "hyperopt"):
            raise InvalidConfigError(f"unknown --tool={args.tool}; use optuna or hyperopt")
        config_files = args.config_files.split() if args.config_files else None
        space = read_params_file(args.params_file)
        fixed = fixed_config(args, extra)
        if tool == "optuna":
            fixed, space = apply_variant(fixed, space, args.params_file)
        check_fixed_config(fixed, config_files)
        if tool == "optuna":
            return run_optuna(args, fixed, space, config_files)
        return run_hyperopt(args, fixed, config_files)
    except RecBoleAnchorError as err:
        print(f"run_hyper_anchor: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("run_hyper_anchor: interrupted; finished trials are in the trials table", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
