"""The integrations own a run's metrics: a Lightning script using tuneterm's logger prints its
model summary, parameter counts and a progress bar with metrics in it, and none of that is read
as a metric, on any of several starts at once (the start-up race: the printed lines came before
the logger's first message reached the supervisor). The script forces the worst order itself: it
prints a metric-like line the moment its logger is made, so a few starts at once suffice (20 took
213 s of CI's 2 cores)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.cli import Cli
from helpers.scripts import PY, events, launch, script, wait_status

from tuneterm.store.runs import RunStore

STARTS = 4


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="needs lightning")
def test_lightning_logger_owns_the_metrics_on_every_start(cli: Cli, runs_dir: Path) -> None:
    ids = [launch(cli, PY, script("lightning_summary.py")) for _ in range(STARTS)]
    for run_id in ids:
        wait_status(runs_dir, run_id, "completed", 600)
    for run_id in ids:
        logs = [e["msg"] for e in events(runs_dir, run_id, "log") if e.get("level") == "out"]
        assert any("Trainable params" in m for m in logs)  # printed, and shown in the log
        names = {k for e in events(runs_dir, run_id, "val") for k in e} - {
            "seq", "t", "kind", "step", "epoch", "off"
        }  # fmt: skip
        assert names == {"val_mse"}, (run_id, names)
        meta = RunStore(runs_dir).info(run_id).meta
        assert meta is not None
        assert [m["name"] for m in meta.metrics["val"]] == ["val_mse"]
        assert meta.metrics["best"] == "val_mse" and meta.best["metric"] == "val_mse"
