"""The engine acts on its own health alerts, on real runs: a NaN loss injected by the fault hook
fails the run with the reason and keeps the checkpoint from before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.cli import TINY, Cli

NAN_RUN = TINY.replace("epochs = 4", "epochs = 6")


def test_a_nan_loss_fails_the_run_and_keeps_the_checkpoint_from_before_it(
    tmp_path: Path, cli: Cli, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "nan.toml"
    cfg.write_text(NAN_RUN)
    # 84 training images, batch 16: 6 steps an epoch; the 15th forward pass (epoch 3) turns NaN
    monkeypatch.setenv("TUNETERM_FAULT", "nan@step15")
    out = cli("run", str(cfg), "--json", timeout=300)
    run = json.loads(out.stdout)
    assert out.returncode == 1, out.stdout[-2000:]
    assert run["status"] == "failed"
    assert "train loss became nan" in run["error"] and 'health.on_nan = "stop"' in run["error"]
    assert "checkpoints/last.pt is from before it" in run["error"]
    events = [json.loads(line) for line in cli("events", run["id"], "--json").stdout.splitlines()]
    trains = [e for e in events if e["kind"] == "train"]
    nan_steps = [e["step"] for e in trains if e["loss"] != e["loss"]]
    assert nan_steps and min(nan_steps) >= 15, nan_steps  # the NaN is in the events, as it came
    last = Path(run["path"]) / "checkpoints" / "last.pt"
    ck = torch.load(last, weights_only=True)
    assert ck["step"] < 15  # written before the NaN...
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert not any(
        e["kind"] == "checkpoint" and e["step"] >= 15 for e in events
    )  # ...and after it none


def test_skip_mode_drops_the_bad_batches_and_completes(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "skip.toml"
    cfg.write_text(TINY + '\n[health]\non_nan = "skip"\n')
    monkeypatch.setenv("TUNETERM_FAULT", "nan@step20")  # every forward from the 20th on is NaN
    run = json.loads(cli("run", str(cfg), "--json", timeout=300).stdout)
    assert run["status"] == "completed", run.get("error")
    logs = cli("events", run["id"], "--json", "--kind", "log").stdout
    assert "whose loss was not finite" in logs
    ck = torch.load(Path(run["path"]) / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
