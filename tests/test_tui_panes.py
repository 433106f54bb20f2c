"""The pane registry: a pane added from this file alone shows in the real TUI under its own
key, the built-in panes keep their keys, and every binding carries an id, a description and a
tooltip."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers.fake_store import make_run, new_app, pilot, ready, screen_text, until
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.widget import Widget
from textual.widgets import Static

import tuneterm.tui
from tuneterm import monitor
from tuneterm.store import RunStore
from tuneterm.tui.panes import ComparedRun, Need, Pane, PaneData, register_pane, registered_panes
from tuneterm.tui.panes import unregister_pane as unregister
from tuneterm.tui.protocols import ChartSettings
from tuneterm.tui.screens.compare import CompareScreen
from tuneterm.tui.widgets.curve import Chart, CurvePlot, Line

BUILTIN = ["loss", "acc", "system", "speed", "log", "config", "test"]


class ToyPane(Pane):
    """Counts the run's train steps and shows its last loss: real data, drawn by the registry."""

    id = "toy"
    key = "8"
    label = "Toy"
    needs = Need.INFO | Need.HISTORY

    def compose(self) -> ComposeResult:
        yield Static("", id="toy-view")

    def draw(self, root: Widget, data: PaneData) -> None:
        text = "toy: no run"
        if data.info is not None and data.history is not None and len(data.history.train):
            loss = float(data.history.train.np("loss")[-1])
            text = f"toy: {data.info.name} ran {len(data.history.train)} steps, loss {loss:.3f}"
        root.query_one("#toy-view", Static).update(text)


class StepsPane(Pane):
    """A pane that compares: on the compare screen, each run's train steps as a line."""

    id = "steps"
    key = "9"
    label = "Steps"
    compares = True

    def compose(self) -> ComposeResult:
        yield Static("", id="steps-view")

    def draw(self, root: Widget, data: PaneData) -> None:
        root.query_one("#steps-view", Static).update("steps")

    def compare_chart(self, runs: Sequence[ComparedRun], chart: ChartSettings) -> Chart:
        out = Chart(title="toy steps per run")
        for run in runs:
            if run.history is not None:
                steps = run.history.train.np("step")
                out.lines.append(Line(steps, steps, run.name, run.colour))
        return out


@pytest.fixture
def toy_pane() -> Iterator[type[Pane]]:
    register_pane(ToyPane)
    yield ToyPane
    unregister("toy")


@pytest.fixture
def steps_pane() -> Iterator[type[Pane]]:
    register_pane(StepsPane)
    yield StepsPane
    unregister("steps")


@pytest.fixture(autouse=True)
def quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    monkeypatch.setattr(monitor, "gpu_samples", lambda indices=None: [])
    monkeypatch.setattr(monitor, "nvml_status", lambda: "NVML unavailable: no library")


def app_with_runs(tmp_path: Path, **steps: int) -> Any:
    """The app over a store of completed runs, each named with its number of train steps."""
    store = RunStore(tmp_path / "runs")
    for name, n in steps.items():
        make_run(store, name, "completed", steps=n)
    return new_app(store)


@pilot
async def test_a_pane_registered_from_a_test_shows_under_its_key(
    tmp_path: Path, toy_pane: type[Pane]
) -> None:
    app = app_with_runs(tmp_path, toyrun=42)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, 1)
        assert "8 Toy" in screen_text(app)  # its tab, after the built-in ones
        await pilot.press("8")
        await until(pilot, lambda: "toy: toyrun ran 42 steps" in screen_text(app), what="toy")
        history = app.histories[app.selected]
        last = float(history.train.np("loss")[-1])
        assert f"toy: toyrun ran 42 steps, loss {last:.3f}" in screen_text(app)
        assert app.screen.active_bindings["8"].binding.id == "pane.toy"
        await pilot.press("1")  # the built-in panes still answer their keys
        await until(pilot, lambda: "toy: toyrun" not in screen_text(app), what="loss pane")
        assert "train loss" in screen_text(app)


@pilot
async def test_a_pane_that_compares_draws_a_chart_on_the_compare_screen(
    tmp_path: Path, steps_pane: type[Pane]
) -> None:
    app = app_with_runs(tmp_path, short=30, long=50)
    async with app.run_test(size=(150, 40)) as pilot:
        await ready(pilot, 2)
        await pilot.press("space", "space", "c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        plot = app.screen.query_one("#cmp-steps", CurvePlot)
        await until(pilot, lambda: sum(len(ln.y) for ln in plot.chart.lines) == 80, what="lines")
        assert {ln.label: len(ln.y) for ln in plot.chart.lines} == {"short": 30, "long": 50}
        assert {ln.color for ln in plot.chart.lines} == set(app.marked.values())
        assert "toy steps per run" in screen_text(app)
        assert app.screen.query_one("#cmp-loss", CurvePlot).chart.lines  # the built-in ones too


def test_the_builtin_panes_keep_their_keys_and_the_toy_is_gone() -> None:
    panes = registered_panes()
    assert [p.id for p in panes] == BUILTIN  # the fixture took the toy pane away
    assert [p.key for p in panes] == [str(i) for i in range(1, 8)]


def test_a_taken_key_or_id_or_a_letter_key_is_refused_by_name(toy_pane: type[Pane]) -> None:
    clash = type("Clash", (ToyPane,), {"id": "other"})
    with pytest.raises(ValueError, match="pane key '8' is taken by pane 'toy'"):
        register_pane(clash)
    same = type("Same", (ToyPane,), {"key": "9"})
    with pytest.raises(ValueError, match="pane id 'toy' is taken"):
        register_pane(same)
    letter = type("Letter", (ToyPane,), {"id": "letter", "key": "n"})
    with pytest.raises(ValueError, match="pane 'letter': key 'n' must be one digit"):
        register_pane(letter)
    assert [p.id for p in registered_panes()] == [*BUILTIN, "toy"]


def _classes_with_bindings() -> list[type[DOMNode]]:
    """Every app, screen and widget class in tuneterm.tui that declares BINDINGS."""
    found: dict[str, type[DOMNode]] = {}
    for mod in pkgutil.walk_packages(tuneterm.tui.__path__, "tuneterm.tui."):
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            ours = issubclass(cls, DOMNode) and cls.__module__.startswith("tuneterm.tui")
            if ours and cls.__dict__.get("BINDINGS"):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


def test_every_binding_has_an_id_a_description_and_a_tooltip() -> None:
    owners = _classes_with_bindings()
    names = {cls.__name__ for cls in owners}
    assert {"TuneTermApp", "MainScreen", "CompareScreen", "EditorScreen"} <= names
    bindings: list[tuple[str, Any]] = [(c.__name__, b) for c in owners for b in c.BINDINGS]
    bindings += [(f"pane {p.id}", p.binding()) for p in registered_panes()]
    assert len(bindings) > 50
    missing = [
        f"{owner}: {b.key} -> {b.action}"
        for owner, b in bindings
        if not (isinstance(b, Binding) and b.id and b.description and b.tooltip)
    ]
    assert missing == []
