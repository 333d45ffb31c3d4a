"""The ``soccerkd`` command: learning subcommands (from :mod:`soccerkd.cli`) plus service ones.

It lives in :mod:`stream` because the service sits on top of the learning library, so this is
the one place that may see both.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from soccerkd.cli import add_commands
from soccerkd.errors import SoccerKDError

# Modules whose ``register(subparsers)`` adds service subcommands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "stream.broker_cli",
    "stream.stream_cli",
    "stream.demo_cli",
    "stream.predict_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soccerkd",
        description="Soccer action recognition: distil clip models (SoccerKDNet) and serve them "
                    "on live video through Kafka.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SoccerKDError as exc:
        print(f"soccerkd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soccerkd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
