"""`tuneterm lr-find`: a kind's LR range test, run in a process of its own like a run's engine.

The kind's spec names the module (`TaskSpec.lr_finder`, run as `python -m MODULE CONFIG
RUNS_ROOT --start --end --steps`); it prints the curve as one JSON object, which comes back as
an `LrCurve` for the front end to draw. Nothing is created in the runs folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tuneterm import tasks
from tuneterm.config import ConfigError, ConfigIssue, RunConfig
from tuneterm.config.tomlio import to_toml
from tuneterm.runs import launcher
from tuneterm.runs.lifecycle import LaunchError
from tuneterm.store.runs import RunStore


@dataclass(frozen=True)
class LrCurve:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float  # where the smoothed loss falls fastest


def lr_find(
    cfg: RunConfig, store: RunStore, start: float = 1e-6, end: float = 1.0, steps: int = 60
) -> LrCurve:
    """Check `cfg` as a launch would, then run its kind's range test; ConfigError for a kind
    without one, LaunchError (with the process's last output) when it fails."""
    module = tasks.get(cfg.run.task).lr_finder
    if not module:
        have = [n for n in tasks.names() if tasks.get(n).lr_finder]
        raise ConfigError(
            [
                ConfigIssue(
                    "run.task",
                    cfg.run.task,
                    f"has no LR range test; lr-find runs {' or '.join(have)} configs",
                )
            ]
        )
    launcher.validate(cfg, store)
    with tempfile.TemporaryDirectory(prefix="tuneterm-lr-find-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(to_toml(cfg), encoding="utf-8")
        cmd = [sys.executable, "-m", module, str(config), str(store.root)]
        cmd += ["--start", repr(start), "--end", repr(end), "--steps", str(steps)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise LaunchError(f"lr-find failed (exit {done.returncode}):\n{tail}")
    data = json.loads(lines[-1])
    return LrCurve(
        [float(v) for v in data["lrs"]],
        [float(v) for v in data["losses"]],
        float(data["suggestion"]),
    )
