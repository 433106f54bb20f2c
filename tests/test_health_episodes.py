"""An alert rings once per episode: the notifying watcher's `Notifier` and the TUI's bell are
fed passes over a run's events with the clock injected (`now`), so ten minutes of a slow run
take no ten minutes. Notifications go through a real command that appends to a file."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.fake_store import make_run

from tuneterm.health import detectors
from tuneterm.health.episodes import CLEAR_S, AlertBook
from tuneterm.health.notify import NotifySettings
from tuneterm.health.state import RunHealth
from tuneterm.health.watch import Notifier, RunHealthReport
from tuneterm.store import RunStore
from tuneterm.store.meta import load_meta, save_meta

NOTIFY = """\
import json, os, sys
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({k: v for k, v in os.environ.items() if k.startswith("TUNETERM_")}))
    out.write("\\n")
"""
T0 = 1_800_000_000.0


@pytest.fixture
def sent(tmp_path: Path) -> Iterator[tuple[Notifier, Path]]:
    script, got = tmp_path / "notify.py", tmp_path / "sent.jsonl"
    script.write_text(NOTIFY)
    settings = NotifySettings(command=[sys.executable, str(script), str(got)])
    yield Notifier(RunStore(tmp_path / "runs"), settings, T0), got


def told(got: Path) -> list[dict[str, str]]:
    return [json.loads(x) for x in got.read_text().splitlines()] if got.exists() else []


def train(t: float, speed: float, loss: float = 0.5, step: int = 0) -> dict[str, Any]:
    return {"t": t, "kind": "train", "step": step, "loss": loss, "examples_s": speed}


def test_a_slowdown_lasting_ten_minutes_of_events_rings_exactly_once(
    sent: tuple[Notifier, Path],
) -> None:
    notifier, got = sent
    health = RunHealth()
    window = health.settings.slowdown_window
    t, step = T0, 0
    fast = [train(T0 + i, 100.0, step=i) for i in range(window)]
    health.feed(fast)
    t, step = T0 + window, window
    passes = opened = 0
    while t < T0 + window + 600:  # ten minutes of events, one every 2 s, a pass every 10 s
        health.feed([train(t + 2 * i, 20.0, step=step + i) for i in range(5)])
        t, step = t + 10, step + 5
        alerts = detectors.check(health, t, running=True, alive=True)
        opened += any(a.kind == "slowdown" for a in alerts)
        notifier.pass_([RunHealthReport("r1", "slow", "running", alerts)], now=t)
        passes += 1
    assert opened >= passes - 3, "the slowdown should stay open for the whole ten minutes"
    slow = [n for n in told(got) if n.get("TUNETERM_ALERT") == "slowdown"]
    assert len(slow) == 1, told(got)
    assert slow[0]["TUNETERM_RUN_ID"] == "r1"


def test_an_alert_that_clears_and_comes_back_rings_again_a_flicker_does_not() -> None:
    health = RunHealth()
    health.feed([train(T0, 1.0, loss=math.nan)])
    (nan,) = detectors.check(health, T0, running=True, alive=True)
    book = AlertBook()
    assert book.ring("r", 0, [nan], T0) == [nan]
    assert book.ring("r", 0, [], T0 + 2) == []  # closed...
    assert book.ring("r", 0, [nan], T0 + 4) == []  # ... and back within CLEAR_S: a flicker
    assert book.ring("r", 0, [], T0 + 6) == []
    assert book.ring("r", 0, [], T0 + 6 + CLEAR_S) == []
    assert book.ring("r", 0, [nan], T0 + 8 + CLEAR_S) == [nan]  # a new episode
    assert book.ring("r", 1, [nan], T0 + 10 + CLEAR_S) == [nan]  # a new attempt (resumed)
    again = AlertBook.from_json(json.loads(json.dumps(book.to_json())))
    assert again.ring("r", 1, [nan], T0 + 12 + CLEAR_S) == []  # a restarted watcher remembers


def test_a_nan_failure_rings_once_not_once_for_the_nan_and_once_for_its_traceback(
    sent: tuple[Notifier, Path],
) -> None:
    notifier, got = sent
    health = RunHealth()
    health.feed([train(T0, 50.0, step=1), train(T0 + 1, 50.0, loss=math.nan, step=2)])
    report = RunHealthReport("r1", "nan", "running", detectors.check(health, T0 + 1, True, True))
    notifier.pass_([report], now=T0 + 1)
    error = {"t": T0 + 2, "kind": "error", "message": "NonFiniteLoss: train loss is nan"}
    health.feed([error])
    alerts = detectors.check(health, T0 + 3, running=False, alive=False)
    assert {a.kind for a in alerts} == {"nan_loss", "traceback"}
    notifier.pass_([RunHealthReport("r1", "nan", "failed", alerts)], now=T0 + 3)
    kinds = [n.get("TUNETERM_ALERT", n["TUNETERM_EVENT"]) for n in told(got)]
    assert kinds == ["nan_loss", "ended"], kinds


def test_a_resumed_runs_second_end_is_notified(sent: tuple[Notifier, Path]) -> None:
    notifier, got = sent
    passes = [("running", 0), ("stopped", 0), ("running", 1), ("completed", 1), ("completed", 1)]
    for i, (status, attempt) in enumerate(passes):
        notifier.pass_([RunHealthReport("r1", "n", status, [], attempt)], now=T0 + i)
    ends = [n["TUNETERM_STATUS"] for n in told(got) if n["TUNETERM_EVENT"] == "ended"]
    assert ends == ["stopped", "completed"]


def test_deleted_and_batch_queued_runs_do_not_keep_the_watcher_alive(
    sent: tuple[Notifier, Path],
) -> None:
    notifier, _ = sent
    assert notifier.pass_([RunHealthReport("r1", "n", "running", [])], now=T0)
    assert not notifier.pass_([], now=T0 + 2), "a deleted run is not active"
    assert not notifier.pass_([RunHealthReport("r2", "n", "submitted", [])], now=T0 + 4)


def test_the_watcher_of_a_store_reports_the_attempt_so_a_resume_is_told_again(
    tmp_path: Path,
) -> None:
    from tuneterm.health.watch import Watcher

    store = RunStore(tmp_path / "store")
    run = make_run(store, "done", status="stopped")
    meta = load_meta(store.meta_path(run.id))
    meta.resumes = 2
    save_meta(store.meta_path(run.id), meta)
    (report,) = Watcher(store).check()
    assert report.attempt == 2
    assert report.name == "done"


def test_a_script_run_that_ended_with_a_nan_loss_keeps_the_alert_with_a_script_hint(
    tmp_path: Path,
) -> None:
    from tuneterm.health.watch import Watcher
    from tuneterm.store import EventWriter

    store = RunStore(tmp_path / "store")
    run = make_run(store, "script", status="completed", events=False)
    with EventWriter(store.events_dir(run.id), fsync=False, background=False) as w:
        w.emit("train", step=1, loss=0.9)
        for step in range(2, 40):
            w.emit("train", step=step, loss=math.nan)
    meta = load_meta(store.meta_path(run.id))
    meta.task, meta.last_loss = "script", math.nan
    save_meta(store.meta_path(run.id), meta)
    (report,) = Watcher(store).check()
    (alert,) = report.alerts
    assert alert.kind == "nan_loss" and report.status == "completed"
    assert "train.lr" not in alert.hint and "your script" in alert.hint


def test_a_long_traceback_line_is_cut_at_a_word_not_inside_one() -> None:
    from tuneterm.health.alerts import log_alert

    words = "the loss became nan; " + "start again in a new run (model.init = run:x) " * 20
    alert = log_alert(T0, {"kind": "error", "message": f"NonFiniteLoss: {words}"})
    assert alert is not None and alert.kind == "traceback"
    assert alert.message.endswith(" …") and len(alert.message) <= 502
    last = alert.message.removesuffix(" …").split()[-1]
    assert last in f"NonFiniteLoss: {words}".split(), last
