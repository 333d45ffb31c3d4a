"""Every command the README shows is one the CLI accepts (the demo and the integration tests run
them for real); every make target it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stream.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]


def readme_commands(prefix: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith(prefix + " "):
                commands.append(line)
    return commands


COMMANDS = readme_commands("soccerkd")


def test_readme_shows_the_main_commands():
    shown = {shlex.split(c)[1] for c in COMMANDS}
    assert {"data", "train", "evaluate", "export", "broker", "ingest", "serve", "events", "config"} <= shown


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.handler)


def test_readme_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    for line in readme_commands("make"):
        assert line.split()[1] in targets, line
