"""Shared fixtures: a tiny real config, a runs folder whose engines are killed afterwards, and
the real CLI in a subprocess (the helpers behind them are in tests/helpers/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import TINY, Cli, kill_engines_under
from helpers.slurmcluster import ClusterError, SlurmCluster, start_cluster
from helpers.sshd import SSHD, SshFleet

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
def ssh_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshFleet]:
    """Two real sshd hosts, `a` and `b`, on 127.0.0.1 (tests/helpers/sshd.py), for the whole
    session; a test that stops a host starts its own."""
    if not Path(SSHD).exists():
        pytest.fail(f"{SSHD} is missing: apt-get install -y openssh-server (.ci/run does)")
    fleet = SshFleet(tmp_path_factory.mktemp("fleet"))
    try:
        fleet.start("a")
        fleet.start("b")
        yield fleet
    finally:
        for host in fleet.hosts.values():
            kill_engines_under(host.runs)
        fleet.close()


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
