"""Shared fixtures of the unit tests: the captured Slurm samples under tests/data/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"


@pytest.fixture
def data_text() -> Callable[[str], str]:
    """Read one file of tests/data/, without its hand-written ``#`` comment lines."""

    def read(name: str) -> str:
        text = (DATA_DIR / name).read_text(encoding="utf-8")
        return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))

    return read
