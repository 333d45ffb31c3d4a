"""Learning-library subcommands of the ``soccerkd`` command.

Each area owns a small ``cli`` module with ``register(subparsers)``; handlers import their heavy
modules (torch, cv2) lazily so that ``soccerkd --help`` stays instant. Every handler is thin:
load config -> call one library function -> print.
"""

from __future__ import annotations

import argparse
import importlib

# Modules whose ``register(subparsers)`` adds learning subcommands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "soccerkd.config_cli",
    "soccerkd.data.cli",
    "soccerkd.train.cli",
    "soccerkd.export_cli",
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
