"""Process faults: kill -9 the engine at random moments; the store, the status, the events and
`resume` must all survive.

Twenty kills in all, split for cost (the real engine needs ~5 s to import torch per start):
* 4 kills of the real engine (`python -m tuneterm.engine`) on one tiny real run, chained: kill,
  check, resume from the last checkpoint, kill again..., then the last resume completes;
* 16 kills of the stand-in engine (tests/helpers/fault_engine.py: the real EngineProcess, event
  writer, meta, signal handling and launcher handshake, with a torch-free loop that checkpoints
  atomically), four runs of four chained kills.
Both go through `launcher.start/resume` and the real store. `bench/soak_kill.py` does 200+.
Moments are picked on the event stream with a seeded RNG (`TUNETERM_FAULT_SEED` to vary).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from helpers.cli import TINY, Cli
from helpers.fault_engine import CMD, kill_chain, standin_step

from tuneterm.config import loads
from tuneterm.runs import launcher
from tuneterm.store.runs import RunStore

SEED = int(os.environ.get("TUNETERM_FAULT_SEED", "8"))

STANDIN = """\
[model]
name = "resnet18"
weights = "none"
[train]
epochs = 6
log_every = 2
"""


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "ENGINE_CMD", CMD)
    monkeypatch.setenv("STANDIN_STEPS", "6")
    monkeypatch.setenv("STANDIN_STEP_S", "0.03")


def _real_step(run_dir: Path) -> int:
    from tuneterm.engine import checkpoint

    last = run_dir / "checkpoints" / "last.pt"
    return int(checkpoint.load(last)["step"]) if last.is_file() else 0


@pytest.mark.parametrize("run", range(4))
def test_standin_engine_killed_at_random_moments(standin: None, runs_dir: Path, run: int) -> None:
    store = RunStore(runs_dir)
    info = launcher.start(store, loads(STANDIN), checked=True)
    rng = random.Random(SEED * 100 + run)
    log = kill_chain(store, info.id, rng, kills=4, checkpoint_step=standin_step, expected_events=36)
    assert log.kills == 4 and log.first_look_crashed == 4, (SEED, log)


def test_real_engine_killed_at_random_moments(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("TUNETERM_OFFLINE", "1")
    store = RunStore(runs_dir)
    cfg = loads(TINY)
    info = launcher.start(store, cfg, checked=True)
    rng = random.Random(SEED)
    log = kill_chain(
        store,
        info.id,
        rng,
        kills=4,
        checkpoint_step=_real_step,
        expected_events=50,
        max_delay=1.0,
        timeout=180,
    )
    assert log.kills == 4 and log.first_look_crashed == 4, (SEED, log)
    shown = cli.json("show", info.id)  # the CLI agrees: completed, four resumes
    assert shown["status"] == "completed" and shown["resumes"] == 4
