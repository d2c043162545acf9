"""The ``lrpcore`` command: ``explain``, ``report``, ``inspect``, ``convert``, ``evaluate``, ``sweep``, ``stability``.

Each subcommand lives in its own module ``lrpcore.cli.<name>`` with two functions:
``add_parser(subparsers)`` registers its arguments, ``run(args) -> int`` does the work.
Exit codes: 0 success, 2 usage error (argparse), 1 any other error, reported as one
line ``lrpcore: error: ...`` unless ``--debug`` asks for the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: Subcommand name → module, in the order ``--help`` lists them.
SUBCOMMANDS = ("explain", "report", "inspect", "convert", "evaluate", "sweep", "stability")


def _available() -> list[tuple[str, object]]:
    modules = []
    for name in SUBCOMMANDS:
        try:
            modules.append((name, importlib.import_module(f"lrpcore.cli.{name}")))
        except ModuleNotFoundError as error:
            if error.name != f"lrpcore.cli.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrpcore",
        description="Layer-wise Relevance Propagation you can see and verify. "
                    "Run 'lrpcore explain' with no arguments for a first heatmap.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _, module in _available():
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("lrpcore: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (e.g. `lrpcore inspect MODEL | head`): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # one clear line for users, the traceback with --debug
        if args.debug:
            raise
        print(f"lrpcore: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
