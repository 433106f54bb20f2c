"""A fourth kind as a plug-in (tests/helpers/toykind.py: a TaskSpec plus one engine module)
trains end to end through the CLI and the real engine process, and is measured by its own
spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

CONFIG = """
[run]
task = "digit-regression"
[model]
name = "mlp"
weights = "none"
[data]
dataset = "digits"
[train]
epochs = 2
batch_size = 64
lr = 0.01
threads = 1
log_every = 5
[regression]
hidden = 16
"""


def _events(run_dir: Path) -> list[dict]:
    from tuneterm.store.events import EventReader

    return EventReader(run_dir / "events").poll()


def _tuneterm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TUNETERM_PLUGINS": "helpers.toykind",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
    }
    cmd = [sys.executable, "-m", "tuneterm", "--runs-dir", str(tmp_path / "runs"), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_plugin_kind_trains_end_to_end_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "cfg.toml").write_text(CONFIG)
    done = _tuneterm(tmp_path, "run", "cfg.toml", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed", (run_dir / "engine.log").read_text()
    vals = [e for e in _events(run_dir) if e["kind"] == "val"]
    assert [v["epoch"] for v in vals] == [1, 2]
    assert all("val_mae" in v and "val_acc" not in v for v in vals)
    # best.pt is picked by val_mae, lower is better, as the spec says
    assert meta["metrics"]["best"] == "val_mae" and meta["metrics"]["higher"] is False
    assert meta["best"]["metric"] == "val_mae"
    assert meta["best"]["value"] == min(v["val_mae"] for v in vals)
    assert meta["final"]["test_mae"] < 3.0  # the mean digit is 4.5: it learned something
    assert "test_loss" in meta["final"] and meta["final"]["best_epoch"] in (1, 2)
    # its own [regression] table reached the engine (a 16-wide hidden layer) and the run's config
    import torch

    best = torch.load(next(run_dir.rglob("best.pt")), weights_only=True)
    assert tuple(best["model"]["0.weight"].shape) == (16, 64)
    assert "[regression]\nhidden = 16" in (run_dir / "config.toml").read_text()


def test_a_plugin_kinds_own_table_is_checked_and_templated_like_a_built_in(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.toml").write_text(CONFIG.replace("hidden = 16", "hiden = 16"))
    bad = _tuneterm(tmp_path, "run", "bad.toml")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "regression.hiden" in bad.stderr and "did you mean hidden?" in bad.stderr
    (tmp_path / "big.toml").write_text(CONFIG.replace("hidden = 16", "hidden = 0"))
    big = _tuneterm(tmp_path, "run", "big.toml")
    assert big.returncode == 2 and "regression.hidden = 0: must be >= 1" in big.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    init = _tuneterm(tmp_path, "init", "t.toml")
    assert init.returncode == 0, init.stderr
    template = (tmp_path / "t.toml").read_text()
    assert "[regression]\n# Width of the MLP's hidden layer\nhidden = 32" in template
