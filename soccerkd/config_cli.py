"""``soccerkd config show``: print a config file resolved with overrides, or the error."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from soccerkd.errors import ConfigError

# The top-level key of a config file says which config class reads it. Packages built on this
# library add their own kinds (add_config_kind); this one knows only its own.
CONFIG_KINDS: dict[str, str] = {
    "train": "soccerkd.train.config:TrainConfig",
}


def add_config_kind(kind: str, target: str) -> None:
    """Let ``soccerkd config show`` read files of ``kind`` with the class ``"module:Class"``."""
    if ":" not in target:
        raise ValueError(f"config kind {kind!r}: target must look like 'module:Class', got {target!r}")
    CONFIG_KINDS[kind] = target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="show a YAML config resolved with --set overrides")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="print the resolved, validated config")
    show.add_argument("path", type=Path, help="YAML config file (e.g. configs/train/synth_student.yaml)")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a value (dotted key, YAML value); repeatable")
    show.add_argument("--json", action="store_true", help="print JSON instead of YAML (for jq and scripts)")
    show.set_defaults(handler=_show)


def config_class_for(path: Path) -> type:
    """The config class for a file: chosen by its ``kind:`` key (default: by its folder name)."""
    import importlib

    from soccerkd.config import read_yaml

    data = read_yaml(path) if path.is_file() else None
    kind = data.get("kind") if isinstance(data, dict) else None
    kind = kind or path.parent.name
    if kind not in CONFIG_KINDS:
        raise ConfigError(f"{str(path)!r}: cannot tell the config kind {kind!r}; "
                          f"set 'kind:' to one of {', '.join(CONFIG_KINDS)}")
    module, _, name = CONFIG_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def _show(args: argparse.Namespace) -> int:
    from soccerkd.config import load_config, mask_secrets, to_dict

    if not args.path.is_file():
        raise ConfigError(f"config file {str(args.path)!r} does not exist")
    cfg = load_config(config_class_for(args.path), args.path, args.overrides)
    doc = mask_secrets(to_dict(cfg))   # a password never reaches the terminal, even one typed in the wrong key
    if args.json:
        import json

        print(json.dumps(doc, indent=2))
    else:
        print(yaml.safe_dump(doc, sort_keys=False), end="")
    return 0
