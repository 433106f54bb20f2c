"""Shared fixtures: a tiny real config, a runs folder whose engines are killed afterwards, and
the real CLI in a subprocess (the helpers behind them are in tests/helpers/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import TINY, Cli, kill_engines_under
from helpers.slurmcluster import ClusterError, SlurmCluster, start_cluster

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


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A real single-node Slurm (munged, slurmctld, slurmd) for the session, its own config in
    SLURM_CONF for every command the tests start. Where it cannot start, the test fails with
    the reason: it never skips."""
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterError as exc:
        pytest.fail(f"the single-node Slurm cluster did not start: {exc}")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
