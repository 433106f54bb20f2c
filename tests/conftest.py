"""Shared fixtures: a tiny real config and a helper that runs the real CLI in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# A real torchvision model on real (embedded) data, small enough for a 2-core CI machine.
TINY = """\
[run]
name = "tiny"

[model]
name = "resnet18"
weights = "none"

[data]
dataset = "digits"
classes = ["0", "1", "2"]
per_class = 40
image_size = 16

[train]
epochs = 4
batch_size = 16
lr = 0.003
log_every = 2
threads = 1
"""


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
    _kill_engines_under(path)


def _kill_engines_under(path: Path) -> None:
    """A failed or timed-out test must not leave detached engines (or queue schedulers)
    running."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if ("tuneterm.engine" in cmd or "tuneterm.runs.scheduler" in cmd) and str(path) in cmd:
            with contextlib.suppress(psutil.Error):
                proc.kill()


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


@pytest.fixture
def cli(runs_dir: Path) -> Cli:
    return Cli(runs_dir)


def wait_for(pred: Callable[[], Any], timeout: float = 120, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
