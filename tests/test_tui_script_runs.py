"""Pilot over a store with one engine run and two real script runs (run by their supervisor):
the script runs are marked in the list, their curves are drawn, and compare overlays all three
with the script arguments that differ in its config diff. The editor creates a script run from
TOML and clones one (its data set stays the script's own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import wait_for
from helpers.fake_store import make_run, new_app, pilot, screen_text, until
from helpers.scripts import PY, script
from textual.widgets import DataTable

from tuneterm.config import from_dict, run_config
from tuneterm.runs import launcher
from tuneterm.store import RunStore
from tuneterm.tui.screens.compare import CompareScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.widgets.curve import CurvePlot
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))


def script_run(store: RunStore, name: str, steps: int) -> str:
    cfg = from_dict(
        {"script": {"command": [PY, script("api_loop.py"), "--steps", str(steps), "--sleep", "0"]}}
    )
    info = launcher.start(store, cfg, name=name)
    wait_for(lambda: store.info(info.id).status == "completed")
    return info.id


@pilot
async def test_engine_and_script_runs_side_by_side(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    make_run(store, "engine")
    script_run(store, "script-a", 6)
    script_run(store, "script-b", 9)
    app = new_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        table = app.screen.query_one(RunTable)
        await until(pilot, lambda: table.row_count == 3)
        await until(pilot, lambda: screen_text(app).count("$ api_loop") == 2)
        # select script-b (runs made in the same second may sort either way)
        table.move_cursor(row=[table.infos[i].name for i in table.order].index("script-b"))
        plot = app.screen.query_one("#plot-loss", CurvePlot)
        await until(pilot, lambda: any(len(ln.y) == 9 for ln in plot.chart.lines), 30, what="curve")
        table.move_cursor(row=0)  # marking starts at the top of the list
        await pilot.press("space", "space", "space")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        loss = screen.query_one("#cmp-loss", CurvePlot)
        await until(pilot, lambda: len([ln for ln in loss.chart.lines if len(ln.y)]) == 3)
        assert {ln.label for ln in loss.chart.lines} == {"engine", "script-a", "script-b"}
        await pilot.press("2")
        diff = screen.query_one("#cmp-diff", DataTable)
        await until(pilot, lambda: diff.row_count > 0)
        keys = {str(diff.get_row_at(i)[0]) for i in range(diff.row_count)}
        assert "args.steps" in keys and "run.task" in keys


@pilot
async def test_editor_creates_a_script_run_and_clones_it(tmp_path: Path) -> None:
    from helpers.fake_store import until as wait

    from tuneterm.tui.screens.editor import EditorScreen
    from tuneterm.tui.widgets.tomlarea import TomlArea

    store = RunStore(tmp_path / "runs")
    app = new_app(store)
    command = f'[{PY!r}, {script("api_loop.py")!r}, "--steps", "4", "--sleep", "0"]'
    command = command.replace("'", '"')

    async def editor(key: str) -> TomlArea:
        await wait(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press(key)
        await wait(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        await wait(pilot, lambda: app.focused is not None and app.focused.screen is app.screen)
        return app.screen.query_one(TomlArea)

    async with app.run_test(size=(120, 40)) as pilot:
        area = await editor("n")
        area.load_text(f'[run]\nname = "mine"\n\n[script]\ncommand = {command}\n')
        await pilot.press("ctrl+l")
        await wait(pilot, lambda: len(store.ids()) == 1, what="a script run")
        first = store.ids()[0]
        await wait(pilot, lambda: store.info(first).status == "completed")
        await wait(pilot, lambda: isinstance(app.screen, MainScreen))
        table = app.screen.query_one(RunTable)
        await wait(pilot, lambda: table.row_count == 1)
        area = await editor("e")  # clone the selected run
        assert 'task = "script"' in area.text and "api_loop.py" in area.text
        area.load_text(area.text.replace('"--steps", "4"', '"--steps", "5"'))
        await pilot.press("ctrl+l")
        await wait(pilot, lambda: len(store.ids()) == 2, what="the clone")
    clone = next(i for i in store.ids() if i != first)
    assert run_config(store, clone).script.args["steps"] == 5
    assert run_config(store, first).script.args["steps"] == 4
