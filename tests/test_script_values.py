"""Printed values end to end through a real script run: a loss of `inf`, `-inf`, `nan` or an
overflowing `1e309` is kept as a value (events store JSON's Infinity/NaN, which tuneterm reads
back as floats) and raises the nan_loss alert; `1,234.5` is read as 1234.5, `1,2` skipped."""

from __future__ import annotations

import math
from pathlib import Path

from helpers.cli import Cli
from helpers.scripts import PY, events, launch, wait_events, wait_status


def test_non_finite_losses_are_kept_and_alerted_and_thousands_read(
    cli: Cli, runs_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "values.py"
    go = tmp_path / "go"
    src.write_text(
        "import os, time\n"
        "for step, text in enumerate(['0.5', '1,234.5', '1,2', 'inf', '-inf', 'nan', '1e309']):\n"
        "    print(f'step={step} loss: {text}', flush=True)\n"
        f"while not os.path.exists({str(go)!r}):\n"
        "    time.sleep(0.05)\n"
    )
    run_id = launch(cli, PY, str(src))
    wait_events(runs_dir, run_id, "train", 6, 60)
    running = cli.json("show", run_id)  # alerts are open while the run is
    assert "nan_loss" in {a["kind"] for a in running["alerts"]}
    go.touch()
    wait_status(runs_dir, run_id, "completed", 60)
    losses = {e["step"]: e["loss"] for e in events(runs_dir, run_id, "train")}
    assert losses[0] == 0.5 and losses[1] == 1234.5 and 2 not in losses
    assert losses[3] == math.inf and losses[4] == -math.inf and math.isnan(losses[5])
    assert losses[6] == math.inf
    shown = cli.json("show", run_id)
    assert shown["best_metric"]["metric"] == "loss" and shown["best_metric"]["value"] == 0.5
