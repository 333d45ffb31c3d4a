"""Config loading: YAML values, --set overrides through the same validation, errors name key and value."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from soccerkd.config import apply_override, dump_config, from_dict, load_config
from soccerkd.errors import ConfigError
from soccerkd.spec import ClipSpec, InputSpec


@dataclass(frozen=True)
class Optim:
    lr: float = 0.1
    name: Literal["sgd", "adamw"] = "sgd"

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr!r}")


@dataclass(frozen=True)
class Run:
    epochs: int = 3
    optim: Optim = field(default_factory=Optim)
    tags: tuple[str, ...] = ()
    out: Path | None = None


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 5\noptim:\n  lr: 0.5\n")
    cfg = load_config(Run, path, ["optim.name=adamw", "tags=[a, b]", "out=/tmp/x"])
    assert cfg == Run(epochs=5, optim=Optim(lr=0.5, name="adamw"), tags=("a", "b"), out=Path("/tmp/x"))
    dump_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Run, tmp_path / "resolved.yaml") == cfg


@pytest.mark.parametrize("override, words", [
    ("epochs=many", ["epochs", "'many'"]),
    ("optim.lr=-1", ["optim.lr", "-1"]),
    ("optim.name=adam", ["optim.name", "'adam'"]),
    ("optim.momentum=0.9", ["optim.momentum"]),
    ("nokey", ["nokey", "key=value"]),
])
def test_errors_name_key_and_value(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(Run, None, [override])
    for word in words:
        assert word in str(info.value)


def test_override_into_non_section_is_rejected():
    raw = {"epochs": 3}
    with pytest.raises(ConfigError, match="epochs"):
        apply_override(raw, "epochs.x=1")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(Run, tmp_path / "nope.yaml")


def test_specs_round_trip_and_validate():
    spec = InputSpec(clip=ClipSpec(num_frames=8, frame_stride=2), size=112, resize=128)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert spec.clip.span() == 15
    assert ClipSpec(num_frames=4, target_fps=12.5).stride_for(25.0) == 2
    with pytest.raises(ConfigError, match="num_frames"):
        ClipSpec(num_frames=0)
    with pytest.raises(ConfigError, match="size"):
        InputSpec(size=200, resize=100)
    assert from_dict(Run, {"optim": {"lr": 1}}).optim.lr == 1.0


def test_cli_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "stream.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("config", "broker"):
        assert command in out.stdout


def test_resize_crop_box_is_the_docstring_example_and_never_below_size():
    from soccerkd.spec import resize_crop_box

    assert resize_crop_box(96, 128, resize=72, size=64) == (72, 96, 4, 16)
    assert resize_crop_box(40, 400, resize=20, size=32) == (32, 200, 0, 84)
