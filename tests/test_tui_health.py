"""The TUI marks runs with open health alerts, shows their hints, and tells of a new one once:
driven by Pilot over a real store whose runs carry a NaN loss in their events."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers.fake_store import make_run, new_app, pilot, ready, screen_text, until

from tuneterm.store import EventWriter, RunStore
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.tui.widgets.alerts import AlertsBox
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    return tmp_path / "settings"


def poison(store: RunStore, run_id: str, step: int) -> None:
    """The run's loss turns NaN at `step`, as a diverging run's does (its event, then its
    meta.json progress, in the engine's order)."""
    with EventWriter(store.events_dir(run_id), fsync=False, background=False) as w:
        w.emit("train", step=step, epoch=2, loss=math.nan, lr=1e-3, examples_s=30.0, data_wait=0.0)
    meta = load_meta(store.meta_path(run_id))
    meta.step, meta.last_loss = step, math.nan
    save_meta(store.meta_path(run_id), meta)


def status_cell(app: Any, name: str) -> str:
    table = app.screen.query_one(RunTable)
    row = [table.infos[i].name for i in table.order].index(name)
    return table.rows[row]["status"]


@pilot
async def test_a_run_with_a_nan_loss_is_marked_and_its_hint_shown(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    make_run(store, "healthy")
    sick = make_run(store, "sick", status="stopped")
    poison(store, sick.id, 31)
    app = new_app(store)
    async with app.run_test(size=(110, 32)) as pilot:
        await ready(pilot, 2)
        await until(pilot, lambda: "⚠" in status_cell(app, "sick"), what="the alert marker")
        assert status_cell(app, "sick") == "stopped ⚠1"
        assert "⚠" not in status_cell(app, "healthy")
        table = app.screen.query_one(RunTable)
        table.move_cursor(row=[table.infos[i].name for i in table.order].index("sick"))
        box = app.screen.query_one(AlertsBox)
        line = "nan_loss: train loss is nan at step 31"
        await until(pilot, lambda: box.display and line in screen_text(app), what="the alerts box")
        text = screen_text(app)
        assert "nan_loss: train loss is nan at step 31" in text, text
        assert "grad_clip" in text, text
        table.move_cursor(row=[table.infos[i].name for i in table.order].index("healthy"))
        await until(pilot, lambda: not box.display, what="no alerts box for a healthy run")


@pilot
async def test_a_new_alert_is_told_once_and_old_ones_are_not_rung(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    old = make_run(store, "old", status="stopped")
    poison(store, old.id, 10)
    later = make_run(store, "later", status="stopped")
    app = new_app(store)
    rung: list[str] = []
    app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
    scans: list[int] = []  # one entry per health scan the app took in
    take_alerts = app.take_alerts

    def counted(*args: Any, **kw: Any) -> None:
        take_alerts(*args, **kw)
        scans.append(1)

    app.take_alerts = counted  # type: ignore[method-assign]
    async with app.run_test(size=(110, 32)) as pilot:
        await until(pilot, lambda: app.alerts.get(old.id), what="the old alert")
        assert rung == []  # open when the TUI started: shown, not rung
        poison(store, later.id, 20)
        await until(pilot, lambda: app.alerts.get(later.id), what="the new alert")
        await until(pilot, lambda: rung == ["bell"], what="one bell")
        seen = len(scans)
        await until(pilot, lambda: len(scans) >= seen + 5, what="five more scans")
        assert rung == ["bell"]  # more scans: still one
        toasts = [n.title for n in app._notifications]
        assert toasts.count("later: nan_loss") == 1
