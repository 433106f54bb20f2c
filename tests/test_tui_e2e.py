"""One real run driven from the editor to completion: the real launcher and engine process."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.fake_store import new_app, pilot, screen_text, until

from tuneterm.store import RunStore
from tuneterm.tui.screens.editor import EditorScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.widgets.curve import CurvePlot
from tuneterm.tui.widgets.tomlarea import TomlArea

TINY = """[run]
name = "e2e"
[model]
name = "resnet18"
weights = "none"
[train]
epochs = 1
[data]
dataset = "digits"
classes = ["0", "1", "2"]
per_class = 20
image_size = 16
"""


@pilot
async def test_editor_launches_a_real_run_to_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    store = RunStore(tmp_path / "runs")
    app = new_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen))
        app.screen.query_one(TomlArea).text = TINY
        await until(pilot, lambda: "✓ valid" in screen_text(app))
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), timeout=90, what="launch")
        await until(pilot, lambda: len(store.ids()) == 1)
        run_id = store.ids()[0]
        await until(pilot, lambda: app.selected == run_id, what="the new run selected")
        await until(
            pilot, lambda: store.info(run_id).status == "completed", timeout=120, what="completion"
        )
        await until(pilot, lambda: app.histories[run_id].test != {}, what="the test event")
        history = app.histories[run_id]
        assert len(history.train) > 0 and len(history.val) == 1
        plot = app.screen.query_one("#plot-loss", CurvePlot)
        await until(pilot, lambda: len(plot.chart.lines[0].y) == len(history.train))
        await until(pilot, lambda: "completed" in screen_text(app))
        await pilot.press("7")
        await until(pilot, lambda: "per class" in screen_text(app))
