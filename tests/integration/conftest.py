"""Fixtures of the integration tier (the shared setup functions are in kafka_setup.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.dev.checkpoints import tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`stream.dev.checkpoints.tiny_checkpoint` favouring "kick", once per module."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
