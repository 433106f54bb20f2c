"""Pilot tests of compare: marks, overlaid curves with stable colours, metrics, config diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.fake_store import make_run, make_store, new_app, pilot, screen_text, until
from textual.widgets import DataTable

from tuneterm.store import RunStore
from tuneterm.tui.screens.compare import CompareScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.widgets.curve import CurvePlot
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))


@pilot
async def test_mark_and_compare_finished_and_running(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 2)
    make_run(store, "live", "running", lr=0.01)
    app = new_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        table = app.screen.query_one(RunTable)
        await until(pilot, lambda: table.row_count == 3)
        await pilot.press("space", "space", "space")
        assert len(app.marked) == 3 and len(set(app.marked.values())) == 3
        colours = dict(app.marked)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        loss = screen.query_one("#cmp-loss", CurvePlot)
        await until(pilot, lambda: len([ln for ln in loss.chart.lines if len(ln.y)]) == 3)
        assert {ln.color for ln in loss.chart.lines} == set(colours.values())
        by_name = {i.name: i.id for i in screen.infos}
        for line in loss.chart.lines:
            assert line.color == colours[by_name[line.label]]  # the colour marked with
        text = screen_text(app)
        assert "live" in text and "run0" in text and "run1" in text
        metrics = screen.query_one("#cmp-metrics", DataTable)
        await until(pilot, lambda: metrics.row_count == 3)
        await pilot.press("2")
        diff = screen.query_one("#cmp-diff", DataTable)
        await until(pilot, lambda: diff.row_count > 0)
        keys = [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)]
        assert set(keys) == {"run.name", "train.lr"}
        await pilot.press("x")
        assert loss.chart.xlabel == "epoch"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.marked == colours  # colours stay with their runs
        await pilot.press("space")  # unmark the selected run: its colour is freed
        assert len(app.marked) == 2


@pilot
async def test_compare_needs_two_runs(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    make_run(store, "only", "completed")
    app = new_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: app.screen.query_one(RunTable).row_count == 1)
        await pilot.press("c")
        assert isinstance(app.screen, MainScreen)
        assert "Mark two or more runs" in " ".join(str(n.message) for n in app._notifications)
