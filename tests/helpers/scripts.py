"""Script runs in tests: the scripts in tests/scripts/, a run's events by kind, waiting for a
status, and the script process under a run's supervisor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psutil

from helpers.cli import Cli, wait_for
from tuneterm.store.events import read_all
from tuneterm.store.runs import RunStore

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
PY = sys.executable


def script(name: str) -> str:
    return str(SCRIPTS / name)


def events(runs: Path, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    evs = read_all(runs / run_id / "events")
    return [e for e in evs if kind is None or e["kind"] == kind]


def status(runs: Path, run_id: str) -> str:
    return RunStore(runs).info(run_id).status


def wait_status(runs: Path, run_id: str, want: str, timeout: float = 120) -> None:
    def ended() -> str:
        s = status(runs, run_id)
        return s if s not in ("created", "starting", "running", "stopping") else ""

    got = wait_for(ended, timeout=timeout)
    assert got == want, (got, (runs / run_id / "output.log").read_text(errors="replace")[-3000:])


def wait_events(runs: Path, run_id: str, kind: str, n: int, timeout: float = 120) -> None:
    wait_for(lambda: len(events(runs, run_id, kind)) >= n, timeout=timeout)


def launch(cli: Cli, *command: str, extra: tuple[str, ...] = ()) -> str:
    proc = cli("run", "--detach", *extra, "--", *command, check=0)
    return proc.stdout.strip().splitlines()[0]


def script_pid(runs: Path, run_id: str) -> int:
    """The script's own process: the supervisor's child."""
    meta = RunStore(runs).info(run_id).meta
    assert meta is not None
    children = psutil.Process(meta.pid).children()
    assert children, "the supervisor has no child"
    return children[0].pid


def stop_resume_kill_resume(
    cli: Cli, runs: Path, run_id: str, kind: str, n: int, timeout: float = 180
) -> None:
    """Live events, stop -> stopped, resume; kill -9 of the script -> crashed, resume ->
    completed: the path every end-to-end script test walks."""
    import os
    import signal

    wait_events(runs, run_id, kind, n, timeout)
    cli("stop", run_id, "--wait", "60", check=0)
    wait_status(runs, run_id, "stopped", timeout)
    seen = len(events(runs, run_id, kind))
    cli("resume", run_id, "--detach", check=0)
    wait_events(runs, run_id, kind, seen + 2, timeout)
    os.kill(script_pid(runs, run_id), signal.SIGKILL)
    wait_status(runs, run_id, "crashed", timeout)
    cli("resume", run_id, "--detach", check=0)
    wait_status(runs, run_id, "completed", timeout)


def assert_steps_in_order(steps: list[int], last: int, every: int = 1) -> None:
    """Every step reported, in order, ending at `last`. A resume after kill -9 may repeat the
    steps since its last checkpoint, but never skips one."""
    assert steps and steps[-1] == last, steps
    for i in range(1, len(steps)):
        assert steps[i] <= max(steps[:i]) + every, (i, steps)
    assert sorted(set(steps)) == list(range(steps[0], last + 1, every)), steps
