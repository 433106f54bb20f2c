"""Pilot tests of the queue screen and the sweep group table, over real store files."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import TINY
from helpers.fake_store import make_run, new_app, pilot, screen_text, until
from textual.widgets import DataTable

from tuneterm.config import loads
from tuneterm.runs import runqueue, sweep
from tuneterm.store import RunStore
from tuneterm.tui.screens.dialogs import ConfirmScreen
from tuneterm.tui.screens.group import GroupScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.screens.queue import QueueScreen
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))


def _names(store: RunStore) -> list[str]:
    return [r.name for r in runqueue.queued(store)]


def _rows(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


@pilot
async def test_queue_screen_lists_moves_and_cancels(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    make_run(store, "done", "completed")
    for name in ("first", "second", "third"):
        runqueue.enqueue(store, loads(TINY), name)
    app = new_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        runs = app.screen.query_one(RunTable)
        await until(pilot, lambda: runs.row_count == 4)
        statuses = {runs.rows[i]["name"]: runs.rows[i]["status"] for i in range(4)}
        assert statuses["second"] == "queued #2" and statuses["done"] == "completed"
        await pilot.press("Q")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: _rows(table) == ["first", "second", "third"])
        assert "scheduler not running" in screen_text(app)
        await pilot.press("J")  # move "first" down one place
        await until(pilot, lambda: _names(store) == ["second", "first", "third"])
        await until(pilot, lambda: _rows(table) == ["second", "first", "third"])
        assert table.cursor_row == 1  # the cursor stays on the moved run
        await pilot.press("K", "K")  # back up, and again (already first: stays)
        await until(pilot, lambda: _names(store) == ["first", "second", "third"])
        await pilot.press("down", "down", "x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # not confirmed: nothing happens
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        assert _names(store) == ["first", "second", "third"]
        await pilot.press("x", "y")
        await until(pilot, lambda: _rows(table) == ["first", "second"])
        third = next(r for r in store.list() if r.name == "third")
        assert third.status == "cancelled"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: "cancelled" in [runs.rows[i]["status"] for i in range(4)])
        second = next(i for i, r in enumerate(runs.order) if runs.infos[r].name == "second")
        runs.move_cursor(row=second)
        await pilot.pause()
        await pilot.press("s")  # stop on a queued run = cancel it (asks first)
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: _names(store) == ["first"])
        runqueue.cancel(store, next(r.id for r in runqueue.queued(store)))
        runqueue.save_settings(store, runqueue.QueueSettings(gpus=[]))  # no GPU detection
        await pilot.press("Q", "s")  # start the scheduler from the queue screen
        try:
            await until(pilot, lambda: "scheduler pid" in screen_text(app))
            assert runqueue.scheduler(store) is not None
        finally:
            runqueue.stop_scheduler(store)


@pilot
async def test_group_screen_sorts_a_sweep_by_metric(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    accs = {"0.1": 0.6, "0.01": 0.9, "0.001": 0.7}
    for lr, acc in accs.items():
        make_run(store, f"g-{lr}", "completed", lr=float(lr), tags=("sweep:g",),
                 best={"metric": "val_acc", "value": acc, "val_acc": acc,
                       "val_loss": 2 - 2 * acc, "epoch": 3})  # fmt: skip
    make_run(store, "other", "completed")
    app = new_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        runs = app.screen.query_one(RunTable)
        await until(pilot, lambda: runs.row_count == 4)
        other = runs.order.index(next(r for r in runs.order if runs.infos[r].name == "other"))
        runs.move_cursor(row=other)
        await pilot.press("G")
        assert isinstance(app.screen, MainScreen)  # not in a sweep: says so, stays
        in_group = next(i for i, r in enumerate(runs.order) if runs.infos[r].name == "g-0.1")
        runs.move_cursor(row=in_group)
        await pilot.pause()
        await pilot.press("G")
        await until(pilot, lambda: isinstance(app.screen, GroupScreen))
        table = app.screen.query_one("#group-table", DataTable)
        await until(pilot, lambda: table.row_count == 3)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["#", "run", "status", "train.lr", "val_acc"]  # swept keys as columns
        assert _rows(table) == ["g-0.01", "g-0.001", "g-0.1"]
        assert [str(table.get_row_at(i)[3]) for i in range(3)] == ["0.01", "0.001", "0.1"]
        assert "best g-0.01" in screen_text(app)
        await pilot.press("s")  # a soup of runs with no best.pt: refused with the reason
        await until(pilot, lambda: any("best.pt" in str(n.message) for n in app._notifications))
        assert len(store.list()) == 4  # nothing made
        await pilot.press("m")  # val_loss: lower is better, same order here
        await until(pilot, lambda: "val_loss" in [str(c.label) for c in table.columns.values()])
        assert _rows(table) == ["g-0.01", "g-0.001", "g-0.1"]
        assert "lower is better" in screen_text(app)  # the run's metric spec says so
        await pilot.press("m")  # test_acc: every run has 0.9; ties keep id order
        await until(pilot, lambda: "test_acc" in [str(c.label) for c in table.columns.values()])
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: app.selected is not None and app.pending_select is None)
        assert sweep.group_of(runs.infos[app.selected or ""]) == "g"
