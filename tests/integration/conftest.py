"""Fixtures of the integration tier over :mod:`kafka_setup` (the shared setup)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_setup import tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`kafka_setup.tiny_checkpoint` favouring "kick", once per module."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
