from pathlib import Path

import pytest

from soccerkd.config import load_config
from soccerkd.errors import ConfigError
from soccerkd.train.config import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "train").glob("*.yaml"))


@pytest.mark.parametrize("override, words", [
    ("kd.alpha=1.5", ["kd.alpha", "1.5"]),
    ("kd.temperature=0", ["kd.temperature", "0"]),
    ("kd.kl_reduction=sum", ["kd.kl_reduction", "sum"]),
    ("optim.lr=-0.1", ["optim.lr", "-0.1"]),
    ("optim.name=rmsprop", ["optim.name", "rmsprop"]),
    ("data.resize=10", ["data.resize", "10"]),
    ("epochs=0", ["epochs", "0"]),
    ("model.frames=many", ["model.frames", "many"]),
    ("schedule.gamma=2", ["schedule.gamma", "2"]),
    ("device=tpu", ["device", "tpu"]),
])
def test_validation_errors_name_key_and_value(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, None, [override])
    for word in words:
        assert word in str(info.value)


def test_unknown_key_and_kd_without_teacher():
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(TrainConfig, None, ["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match="kd.teacher_checkpoint"):
        load_config(TrainConfig, None, ["run=kd"])


def test_teacher_path_substitutes_seed():
    cfg = load_config(TrainConfig, None, ["run=kd", "seed=2", "kd.teacher_checkpoint=runs/t/seed{seed}/best.pt"])
    assert cfg.teacher_path() == Path("runs/t/seed2/best.pt")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.run in ("teacher", "student", "kd")
