"""Runs on a real single-node Slurm (the `slurm_cluster` fixture: Debian's slurm-wlm daemons),
each case through the CLI: submit, Slurm's own states (pending with its reason, running,
cancelled from outside), stop and resume through Slurm, the time-limit warning, requeue, a
sweep as one job array, refusals that leave nothing behind, and the bound on squeue calls.

Script runs (tests/scripts/api_loop.py, no torch) carry every case but the two that need the
engine's checkpoint. Slurm is asked at most once per `slurm.poll_s` (1 s here)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import TINY, Cli
from helpers.slurmcluster import SlurmCluster
from helpers.waiting import wait_for

from tuneterm.runs import report
from tuneterm.store.runs import RunStore

SCRIPT = Path(__file__).parent / "scripts" / "api_loop.py"
FAST = ["--set", "slurm.poll_s=1"]
HELD = [*FAST, "--set", 'slurm.extra=["--hold"]']


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    yield slurm_cluster
    slurm_cluster.run("scancel", "--user", "root")  # no test's job outlives it


def script_run(cli: Cli, *opts: str, steps: int = 30, sleep: float = 0.05) -> str:
    proc = cli("run", "--slurm", "--detach", *opts, "--", sys.executable, str(SCRIPT),
               "--steps", str(steps), "--sleep", str(sleep), check=0)  # fmt: skip
    return proc.stdout.strip()


def show(cli: Cli, run: str) -> dict[str, Any]:
    """`show --json`'s data, read in this process (the polls are many; each CLI start costs
    a second on a loaded 2-core machine)."""
    store = RunStore(cli.runs)
    return report.detail(store, store.info(run))


def wait_status(cli: Cli, run: str, *statuses: str) -> dict[str, Any]:
    """Poll until the run reads one of `statuses`; then what the CLI's `show --json` says."""
    wait_for(lambda: show(cli, run)["status"] in statuses, every=0.2)
    data: dict[str, Any] = cli.json("show", run)
    assert data["status"] in statuses, data["status"]
    return data


def test_a_script_run_goes_pending_running_completed_with_live_events(
    cli: Cli, slurm: SlurmCluster
) -> None:
    run = script_run(cli, *HELD, steps=40, sleep=0.1)
    held = wait_status(cli, run, "pending")
    job = held["slurm"]["job_id"]
    assert held["slurm"]["reason"] == "JobHeldUser" and held["slurm"]["partition"] == "debug"
    assert "JobHeldUser" in held["reason"]
    listing = cli("ls", check=0).stdout
    assert "pending" in listing and f"job {job}" in listing
    slurm.run("scontrol", "release", job)
    live = wait_for(lambda: (d := show(cli, run))["status"] == "running" and d["step"] > 0 and d)
    assert live["slurm"]["state"] == "RUNNING" and live["slurm"]["nodes"]
    events = cli("events", run, "--kind", "train", "--json", check=0).stdout.splitlines()
    assert events, "metrics reach the store while the job runs"
    done = wait_status(cli, run, "completed", "failed", "crashed")
    assert done["status"] == "completed", done["reason"]
    assert (Path(done["path"]) / f"slurm-{job}.out").is_file()


def test_stop_of_a_pending_job_cancels_it(cli: Cli, slurm: SlurmCluster) -> None:
    run = script_run(cli, *HELD)
    wait_status(cli, run, "pending")
    cli("stop", run, check=0)
    done = wait_status(cli, run, "cancelled")
    assert done["slurm"]["job_id"] in done["reason"]


def test_scancel_from_outside_reads_cancelled(cli: Cli, slurm: SlurmCluster) -> None:
    run = script_run(cli, *HELD)
    job = wait_status(cli, run, "pending")["slurm"]["job_id"]
    slurm.run("scancel", job)
    assert wait_status(cli, run, "cancelled", "crashed")["status"] == "cancelled"
    cli("rm", run, check=0)
    assert cli.json("ls") == []


def test_refusals_leave_no_run_behind(cli: Cli, slurm: SlurmCluster) -> None:
    proc = script_run_proc(cli, "--set", "slurm.partition=gpu-a100")
    assert proc.returncode == 2, proc.stderr
    assert "slurm.partition" in proc.stderr and "debug" in proc.stderr
    proc = script_run_proc(cli, "--set", "slurm.gpus_per_node=1")
    assert proc.returncode == 1, proc.stderr
    assert "sbatch" in proc.stderr and "gres" in proc.stderr
    assert cli.json("ls") == []
    assert not [p for p in cli.runs.iterdir() if not p.name.startswith(".")]


def script_run_proc(cli: Cli, *opts: str) -> subprocess.CompletedProcess[str]:
    return cli("run", "--slurm", "--detach", *opts, "--", sys.executable, str(SCRIPT))


def test_requeue_resumes_by_itself(cli: Cli, slurm: SlurmCluster) -> None:
    run = script_run(cli, *FAST, "--set", "slurm.requeue=true", steps=60, sleep=0.1)
    data = wait_for(lambda: (d := show(cli, run))["step"] >= 5 and d)
    job = data["slurm"]["job_id"]
    done = slurm.run("scontrol", "requeue", job)
    assert done.returncode == 0, done.stderr
    wait_status(cli, run, "pending")
    # A requeued job waits two minutes (BeginTime) before it may start again: let it go now.
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
    final = wait_status(cli, run, "completed", "failed", "crashed")
    assert final["status"] == "completed", final["reason"]
    assert final["resumes"] == 1 and final["step"] == 59


def test_a_sweep_is_one_job_array(cli: Cli, slurm: SlurmCluster) -> None:
    out = sweep(cli, "--name", "arr", "--grid", "steps=4,6,8", *FAST, "--", sys.executable,
                str(SCRIPT), "--steps", "{steps}", "--sleep", "0.05")  # fmt: skip
    runs = [r["id"] for r in out["runs"]]
    jobs = [show(cli, r)["slurm"]["job_id"] for r in runs]
    base = jobs[0].split("_")[0]
    assert jobs == [f"{base}_{n}" for n in range(3)]
    for run in runs:
        assert wait_status(cli, run, "completed", "failed", "crashed")["status"] == "completed"
    best = cli.json("sweep-best", "arr")
    assert best["best"]["id"] in runs


def sweep(cli: Cli, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli("sweep", "--slurm", "--json", *args, check=0).stdout)
    return data


def test_engine_stops_and_resumes_through_slurm(
    cli: Cli, slurm: SlurmCluster, tmp_path: Path
) -> None:
    """stop while running: SIGTERM to the job's batch script (the engine), `stopped` with
    last.pt; then Slurm's time-limit warning (USR1, as sbatch --signal=B:USR1@grace_s sends
    it) after `resume --slurm`: `stopped` again with TIMEOUT as the reason; a last
    `resume --slurm` completes the run."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.replace("epochs = 4", "epochs = 8"))
    run = cli("run", str(config), "--slurm", "--detach", *FAST, "--set", "slurm.time=10",
              "--set", "slurm.grace_s=60", check=0).stdout.strip()  # fmt: skip
    wait_for(lambda: (d := show(cli, run))["status"] == "running" and d["step"] > 0)
    cli("stop", run, check=0)
    stopped = wait_status(cli, run, "stopped", "completed", "failed", "crashed")
    assert stopped["status"] == "stopped", stopped["reason"]
    assert "last.pt" in stopped["checkpoints"]
    cli("resume", run, "--slurm", check=0)
    resumed = wait_for(lambda: (d := show(cli, run))["status"] == "running" and d["resumes"] and d)
    job = resumed["slurm"]["job_id"]
    slurm.run("scancel", "--batch", "--signal=USR1", job)
    warned = wait_status(cli, run, "stopped", "completed", "failed", "crashed")
    assert warned["status"] == "stopped" and "TIMEOUT" in warned["reason"], warned["reason"]
    cli("resume", run, "--slurm", check=0)
    final = wait_status(cli, run, "completed", "failed", "crashed")
    assert final["status"] == "completed", final["reason"]
    assert final["resumes"] == 2


def test_a_runs_folder_lists_the_queue_at_most_once_per_poll(
    cli: Cli, slurm: SlurmCluster, tmp_path: Path
) -> None:
    """20 live (held) jobs, 3 readers listing the runs folder as fast as they can for 6 s, with
    a logging `squeue` ahead of the real one on PATH: at most one call per poll_s (2 s)."""
    out = sweep(cli, "--name", "bound", "--grid",
                   "steps=" + ",".join(str(n) for n in range(1, 21)),
                   "--set", "slurm.poll_s=2", "--set", 'slurm.extra=["--hold"]',
                   "--", sys.executable, str(SCRIPT), "--steps", "{steps}")  # fmt: skip
    assert len(out["runs"]) == 20
    log = tmp_path / "squeue.log"
    wrapper = tmp_path / "bin" / "squeue"
    wrapper.parent.mkdir()
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True).stdout.strip()
    wrapper.write_text(f'#!/bin/sh\necho "$(date +%s.%N)" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{wrapper.parent}:{os.environ['PATH']}")
    reader = (
        "import sys, time\nfrom tuneterm.store.runs import RunStore\n"
        "end = time.monotonic() + 6; n = 0\n"
        "while time.monotonic() < end:\n"
        "    runs = RunStore(sys.argv[1]).list(); n += 1\n"
        "    assert all(r.status == 'pending' for r in runs), [r.status for r in runs]\n"
        "print(n)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", reader, str(cli.runs)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    listings = sum(int(r[0]) for r in results)
    calls = [float(t) for t in log.read_text().split()]
    assert calls, listings
    # One call per poll_s (2 s) at most. The wrapper stamps a call when its shell starts, a few
    # ms after the refresher read the cache's age, so consecutive stamps may sit just under
    # 2 s apart; a second reader refreshing too would show as a gap far below it.
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(g >= 2 - 0.25 for g in gaps), (gaps, listings)
    assert listings > 3 * len(calls), (listings, len(calls))
