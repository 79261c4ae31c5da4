"""Command line of ``run_recbole_anchor.py``: RecBole's flags and habits.

``--model``, ``--dataset`` and ``--config_files`` (space-separated yaml files) as in
RecBole's ``run_recbole.py``; every other ``--key=value`` overrides that config key.
Bad input ends with a one-line error on stderr and exit status 2.
"""
import argparse
import sys

from recbole_anchor.errors import RecBoleAnchorError
from recbole_anchor.evaluator.activity import format_activity_table

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
    parser.add_argument("--model", "-m", default="AnchorMultVAE", help="model name")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name")
    parser.add_argument(
        "--config_files", default=None, help="yaml config files, separated by spaces"
    )
    return parser


def split_overrides(extra):
    """Turn unparsed ``--key=value`` / ``--key value`` arguments into ``--key=value``."""
    overrides, index = [], 0
    while index < len(extra):
        arg = extra[index]
        if not arg.startswith("--") or len(arg) < 3:
            raise RecBoleAnchorError(
                f"cannot read argument '{arg}'; write config overrides as --key=value"
            )
        if "=" not in arg:
            if index + 1 >= len(extra) or extra[index + 1].startswith("--"):
                raise RecBoleAnchorError(f"argument '{arg}' has no value; write {arg}=VALUE")
            arg = f"{arg}={extra[index + 1]}"
            index += 1
        overrides.append(arg)
        index += 1
    return overrides


def format_result(title, result):
    lines = [title]
    for metric, value in (result or {}).items():
        lines.append(f"  {metric:<20} {value:.4f}")
    return "\n".join(lines)


def main(argv=None):
    args, extra = build_parser().parse_known_args(argv)
    try:
        from recbole_anchor.quick_start import run_recbole_anchor

        config_files = args.config_files.split() if args.config_files else None
        # Progress bars only on a terminal; --show_progress=True forces them.
        config_dict = {} if sys.stderr.isatty() else {"show_progress": False}
        result = run_recbole_anchor(
            model=args.model,
            dataset=args.dataset,
            config_file_list=config_files,
            config_dict=config_dict,
            cmd_args=split_overrides(extra),
        )
    except RecBoleAnchorError as err:
        print(f"run_recbole_anchor: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("run_recbole_anchor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(format_result(f"best valid ({args.model} on {args.dataset}):", result["best_valid_result"]))
    print(format_result(f"test result ({args.model} on {args.dataset}):", result["test_result"]))
    if "activity_result" in result:
        print(format_activity_table(result["activity_result"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
