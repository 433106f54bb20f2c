"""Shared fixtures: a tiny real config, a runs folder whose engines are killed afterwards, and
the real CLI in a subprocess (the helpers behind them are in tests/helpers/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import TINY, Cli, kill_engines_under

# The kinds of run (their config tables and the checks that need their registry) are registered
# by importing tuneterm.tasks, as every entry point does; tests that read configs directly
# through tuneterm.config start from the same place.
import tuneterm.tasks  # noqa: F401


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs"
    path.mkdir()
    yield path
    kill_engines_under(path)


@pytest.fixture
def cli(runs_dir: Path) -> Cli:
    return Cli(runs_dir)
