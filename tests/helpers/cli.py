"""Run the real CLI in a subprocess (`Cli`), wait for a condition (`wait_for`), and clean up the
engines a test left running (`kill_engines_under`). `TINY` is a tiny real run config."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers.configs import tiny_toml
from helpers.waiting import wait_for

__all__ = ["TINY", "Cli", "cli_popen", "kill_engines_under", "wait_for"]

# A real torchvision model on real (embedded) data, small enough for a 2-core CI machine.
TINY = tiny_toml()


def kill_engines_under(path: Path) -> None:
    """A failed or timed-out test must not leave detached engines (or queue schedulers, or
    health watchers) running."""
    import psutil

    markers = (
        "tuneterm.engine",
        "tuneterm.runs.scheduler",
        "tuneterm.script",
        "tuneterm.health.watch",
    )
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(m in cmd for m in markers) and str(path) in cmd:
            with contextlib.suppress(psutil.Error):
                below = proc.children(recursive=True)  # a script run's own processes
                proc.kill()
                for child in below:
                    with contextlib.suppress(psutil.Error):
                        child.kill()


def cli_popen(runs: Path, *args: str, env: dict[str, str], **kw: Any) -> subprocess.Popen[str]:
    """Start the CLI in the background (a follower to interrupt, a reader beside others), its
    output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuneterm", "--runs-dir", str(runs), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


class Cli:
    def __init__(self, runs: Path) -> None:
        self.runs = runs

    def __call__(
        self, *args: str, timeout: float = 240, check: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "TUNETERM_RUNS"}
        env["TUNETERM_OFFLINE"] = "1"  # deterministic: never reach for a download in tests
        env["TORCH_HOME"] = str(self.runs.parent / "torch-home")  # an empty weights cache
        proc = subprocess.run(
            [sys.executable, "-m", "tuneterm", "--runs-dir", str(self.runs), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if check is not None:
            assert proc.returncode == check, (
                proc.returncode,
                proc.stdout[-2000:],
                proc.stderr[-2000:],
            )
        return proc

    def json(self, *args: str) -> Any:
        proc = self(*args, "--json", check=0)
        return json.loads(proc.stdout)
