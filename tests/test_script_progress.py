"""A script run through the CLI, where a script's length is its own: `run`'s follow line and
`ls` say `step N` (never `None` or `/0`); the run's CPU is its whole process tree's, busy
children included, as psutil measures each of them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
from helpers.cli import Cli
from helpers.scripts import PY, events, script

from tuneterm.monitor import ProcessTree


def test_follow_and_ls_say_step_n_and_the_cpu_is_the_trees(cli: Cli, runs_dir: Path) -> None:
    proc = cli("run", "--name", "p", "--", PY, script("steps_report.py"), "--steps", "30",
               "--sleep", "0.1", "--busy-child", check=0)  # fmt: skip
    follow = proc.stdout
    assert "step 29" in follow, follow
    assert "/None" not in follow and "epoch 0/0" not in follow
    (run_id,) = [p.name for p in runs_dir.iterdir()]
    ls = cli("ls", check=0).stdout.splitlines()
    header, row = ls[0].split("\t"), ls[1].split("\t")
    assert row[header.index("EPOCH")] == "step 29"
    assert "/0" not in "\n".join(ls)
    # the busy child spins a core (a share of one on a loaded machine); the supervisor,
    # all that was counted before, uses about 1%
    cpu = max(e["cpu"] for e in events(runs_dir, run_id, "sys"))
    assert cpu > 5, cpu


def test_a_process_trees_cpu_counts_a_grandchild_born_between_samples() -> None:
    code = (
        "import subprocess, sys, time; time.sleep(0.3); "
        "subprocess.run([sys.executable, '-c', 'while True: pass'])"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        root = psutil.Process(parent.pid)
        tree = ProcessTree(root)
        assert tree.sample()["cpu"] == 0.0  # the first sample primes it, before the grandchild
        t0 = time.monotonic()
        deadline = t0 + 30
        while not root.children(recursive=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        (busy,) = root.children(recursive=True)
        time.sleep(1.0)
        sample = tree.sample()
        span = time.monotonic() - t0
        spent = sum(busy.cpu_times()[:2])  # the grandchild's CPU seconds, all since the prime
        assert spent > 0.01  # it ran at all
        assert sample["cpu"] * span / 100 >= 0.8 * spent, (sample, spent, span)
        assert sample["rss"] > busy.memory_info().rss
    finally:
        for p in psutil.Process(parent.pid).children(recursive=True):
            p.kill()
        parent.kill()
        parent.wait()


def test_a_queued_script_run_has_no_epoch_count(cli: Cli) -> None:
    """Queued, a script run has not said how long it is: not the engine's default `0/5`."""
    cli("run", "--queue", "--no-start", "--name", "q", "--", PY, script("steps_report.py"))
    lines = cli("ls").stdout.splitlines()
    header, row = lines[0].split("\t"), lines[1].split("\t")
    assert row[header.index("STATUS")].startswith("queued") and row[header.index("EPOCH")] == "-"
