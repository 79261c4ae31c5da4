"""Command line of ``run_recbole_anchor.py``: RecBole's flags and habits.

``--model``, ``--dataset`` and ``--config_files`` (space-separated yaml files) as in
RecBole's ``run_recbole.py``; every other ``--key=value`` overrides that config key.
Comma-separated ``--model`` or ``--seed`` lists switch to comparison mode: every model
on every seed, tables in ``--output_dir`` (default ``results/<dataset>/``), paired
tests against ``--baseline`` (default: the second model); ``--tune=N`` first tunes
every model with N trials (``--storage`` shares the studies between machines).
Bad input ends with a one-line error on stderr and exit status 2.
"""
import argparse
import sys

from recbole_anchor.command_line import parse_variant, split_models, split_overrides
from recbole_anchor.errors import RecBoleAnchorError
from recbole_anchor.evaluator.activity import format_activity_table
from recbole_anchor.stop_signals import stop_on_signals

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run_recbole_anchor.py",
        description=(
            "Train and test AnchorMultVAE or any RecBole model on a RecBole dataset. "
            "Any other --key=value overrides that config key "
            "(e.g. --epochs=10 --anchor_weight=0.2 --gpu_id=0)."
        ),
    )
    parser.add_argument(
        "--model",
        "-m",
        default="AnchorMultVAE",
        help="model name, or a comma-separated list; a variant is Name[key=value;...], "
        "e.g. AnchorMultVAE[anchor_weight=0]",
    )
    parser.add_argument("--seed", default=None, help="random seed, or a comma-separated list")
    parser.add_argument(
        "--output_dir", default=None, help="comparison mode: folder of the tables (results/<dataset>/)"
    )
    parser.add_argument(
        "--baseline", default=None, help="comparison mode: reference model(s) of the paired tests, e.g. "
        "'AnchorMultVAE[anchor_weight=0],RecVAE' (default: the second model)"
    )
    parser.add_argument(
        "--tune", default=None, metavar="N",
        help="comparison mode: tune every model with N trials on the first seed's "
        "validation users before the seeds (default: the config's tune: block, else none)",
    )
    parser.add_argument(
        "--storage", default=None,
        help="comparison mode with --tune: database URL or journal file of the tuning "
        "studies, shared by every machine that runs the same command",
    )
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name")
    parser.add_argument(
        "--config_files", default=None, help="yaml config files, separated by spaces"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue training from a checkpoint (e.g. saved/<run>-last.pth, written "
        "after every epoch); pass the same config as the run that wrote it",
    )
    parser.add_argument(
        "--trust-checkpoint",
        "--trust_checkpoint",
        dest="trust_checkpoint",
        action="store_true",
        help="also load checkpoints written by plain RecBole; they pickle objects, so "
        "loading one runs code stored in the file: only for files you trust",
    )
    parser.add_argument(
        "--nproc", type=int, default=1,
        help="processes for data-parallel training on this machine (RecBole's; "
        "gloo on the CPU, nccl on CUDA with one gpu_id per process)",
    )
    parser.add_argument(
        "--world_size", type=int, default=-1,
        help="processes in the whole group, all machines together (default: --nproc)",
    )
    parser.add_argument("--ip", default="localhost", help="address of process 0")
    parser.add_argument("--port", default="5678", help="port of process 0")
    parser.add_argument(
        "--group_offset", type=int, default=0,
        help="rank of this machine's first process in the group",
    )
    return parser


def parse_seeds(text):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RecBoleAnchorError(
            f"cannot read --seed={text}; give integers, e.g. --seed=1 or --seed=1,2,3"
        ) from None


def format_result(title, result):
    lines = [title]
    for metric, value in (result or {}).items():
        lines.append(f"  {metric:<20} {value:.4f}")
    return "\n".join(lines)


def main(argv=None):
    with stop_on_signals():  # kill and kill -INT stop it as Ctrl-C does
        return _main(argv)


def _main(argv):
    args, extra = build_parser().parse_known_args(argv)
    try:
        from recbole_anchor.quick_start import run_recbole_anchor

        config_files = args.config_files.split() if args.config_files else None
        # Progress bars only on a terminal; --show_progress=True forces them.
        config_dict = {} if sys.stderr.isatty() else {"show_progress": False}
        models = split_models(args.model)
        seeds = parse_seeds(args.seed) if args.seed else []
        if args.nproc < 1:
            raise RecBoleAnchorError(f"--nproc={args.nproc}: give at least 1 process")
        if (args.tune is not None or args.storage) and not (len(models) > 1 or len(seeds) > 1):
            raise RecBoleAnchorError(
                "--tune/--storage tune the models of a comparison: give a model list or a "
                "seed list (e.g. --seed=1,2,3); to tune one model use run_hyper_anchor.py"
            )
        if args.storage and args.tune is None:
            raise RecBoleAnchorError("--storage holds tuning studies: give --tune=N with it")
        if len(models) > 1 or len(seeds) > 1:
            if args.nproc > 1 or args.world_size > 0:
                raise RecBoleAnchorError(
                    "--nproc runs one model on one seed; drop it or the lists"
                )
            return compare(args, models, seeds, config_files, config_dict, extra)
        if seeds:
            config_dict["seed"] = seeds[0]
        model, overrides = parse_variant(models[0] if models else "")
        config_dict.update(overrides)
        result = run_recbole_anchor(
            model=model,
            dataset=args.dataset,
            config_file_list=config_files,
            config_dict=config_dict,
            cmd_args=split_overrides(extra),
            resume=args.resume,
            trust_checkpoint=args.trust_checkpoint,
            nproc=args.nproc,
            world_size=args.world_size,
            ip=args.ip,
            port=args.port,
            group_offset=args.group_offset,
            results_on_console=False,  # printed below, once
        )
    except RecBoleAnchorError as err:
        print(f"run_recbole_anchor: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("run_recbole_anchor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result is None:  # a machine without process 0 of a multi-machine group
        print("done; process 0 reports the results")
        return 0
    print(format_result(f"best valid ({args.model} on {args.dataset}):", result["best_valid_result"]))
    print(format_result(f"test result ({args.model} on {args.dataset}):", result["test_result"]))
    if "activity_result" in result:
        print(format_activity_table(result["activity_result"]))
    return 0


def compare(args, models, seeds, config_files, config_dict, extra):
    """Comparison mode: every model on every seed, then the tables."""
    from recbole_anchor.comparison.runner import run_comparison

    if args.resume:
        raise RecBoleAnchorError("--resume continues one run; it cannot be used with lists")
    paths = run_comparison(
        models,
        seeds or [2020],
        args.dataset,
        output_dir=args.output_dir,
        baseline=args.baseline,
        config_file_list=config_files,
        config_dict=config_dict,
        cmd_args=split_overrides(extra),
        tune=args.tune,
        storage=args.storage,
    )
    with open(paths["md"], encoding="utf-8") as handle:
        print(handle.read())
    print("wrote " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
