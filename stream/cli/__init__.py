"""The ``soccerkd`` command: learning subcommands (from :mod:`soccerkd.cli`) plus service ones.

It lives in :mod:`stream` because the service sits on top of the learning library, so this is
the one place that may see both. It also owns what every command shares: ``--log-level``,
``--log-format`` and ``--debug`` (accepted before or after the subcommand), help that shows
every default, and the rule that user errors end in one line and exit code 2, never in a
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from soccerkd.cli import add_commands
from soccerkd.config_cli import add_config_kind
from soccerkd.errors import SoccerKDError

from stream.errors import FailStop, redact_url

# Modules whose ``register(subparsers)`` adds service subcommands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "stream.cli.broker",
    "stream.cli.topics",
    "stream.cli.dlq",
    "stream.cli.serve",
    "stream.cli.demo",
    "stream.cli.predict",
    "stream.cli.view",
)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to every option that has a meaningful default and does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "(default" in text or default is None or default is False or default == []
                or default is argparse.SUPPRESS
                or action.option_strings == [] or isinstance(action, argparse._HelpAction)):
            return text
        return f"{text} (default: %(default)s)"


class RawDescriptionDefaultsHelpFormatter(DefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`DefaultsHelpFormatter` that keeps a description's paragraphs and line breaks."""


class Interrupted(KeyboardInterrupt):
    """A command stopped by Ctrl-C after a clean shutdown; exits 130 like any interrupted tool."""


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On the top parser the real defaults; on every subcommand SUPPRESS, so that an option given
    # after the subcommand overrides one given before it, and an absent one changes nothing.
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("output and diagnostics (every command)")
    group.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=default("info"),
                       help="log level; the Kafka client logs at WARNING unless this is debug (default: info)")
    group.add_argument("--log-format", choices=("text", "json"), default=default("text"),
                       help="log lines as text or as one JSON object each (default: text)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show the traceback of an error instead of one line")


def _leaf_parsers(parser: argparse.ArgumentParser):
    for action in parser._actions:   # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _leaf_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    from stream import __version__

    parser = argparse.ArgumentParser(
        prog="soccerkd", formatter_class=DefaultsHelpFormatter,
        description="Soccer action recognition: distil clip models (SoccerKDNet) and serve them "
                    "on live video through Kafka.")
    parser.add_argument("--version", action="version", version=f"soccerkd {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_config_kind("stream", "stream.config:StreamConfig")   # `soccerkd config show` reads serve configs
    add_commands(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for leaf in _leaf_parsers(parser):
        if not issubclass(leaf.formatter_class, DefaultsHelpFormatter):   # a command may keep its own layout
            leaf.formatter_class = DefaultsHelpFormatter   # help shows every default
        _add_common(leaf, top=False)
    return parser


def _one_line(exc: BaseException) -> str:
    text = redact_url(" ".join(str(exc).split()))   # no camera credentials on the terminal
    return text or type(exc).__name__


def _resolve_shipped_checkpoint(args: argparse.Namespace) -> None:
    """``soccerkd evaluate`` and ``export`` come from :mod:`soccerkd`, which cannot see the service's
    shipped checkpoints; a shipped name given to their ``--checkpoint`` (``demo``) becomes its file
    here, so every command takes the same names."""
    from stream.inference.artifacts import SHIPPED, resolve_checkpoint

    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is not None and str(checkpoint) in SHIPPED:
        args.checkpoint = resolve_checkpoint(checkpoint)


def main(argv: list[str] | None = None) -> int:
    from stream.app import logs

    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    try:
        _resolve_shipped_checkpoint(args)
        return int(args.handler(args) or 0)
    except SoccerKDError as exc:
        if args.debug:
            raise
        print(f"soccerkd: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug and not isinstance(sys.exc_info()[1], Interrupted):
            raise
        print("soccerkd: interrupted", file=sys.stderr)
        return 130
    except FailStop as exc:   # stopped on purpose after a fault; a supervisor's restart replays
        if args.debug:
            raise
        print(f"soccerkd: error: {_one_line(exc)}; failing stop (exit 1), a restart replays from the last commit",
              file=sys.stderr)
        return 1
    except BrokenPipeError:   # `soccerkd events tail | head`: the reader left, not an error
        return 0
    except Exception as exc:
        if args.debug:
            raise
        print(f"soccerkd: error: unexpected {type(exc).__name__}: {_one_line(exc)} "
              f"(run again with --debug for the traceback)", file=sys.stderr)
        return 1

