"""Each pane of a real script run (its supervisor, its own process tree) at 80x24: what the
script reported, in a script's terms: steps/s, the command and [script], the last and best of
each metric, any val metric; `step N` where no total is known; a resumed script's curve once."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import wait_for
from helpers.fake_store import new_app, pilot, screen_text, until
from helpers.scripts import PY, events, script

from tuneterm.config import from_dict
from tuneterm.runs import launcher
from tuneterm.store import RunStore
from tuneterm.tui.panes.speed import step_rates
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.widgets.curve import CurvePlot
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))


def run_script(store: RunStore, name: str, *args: str, status: str = "completed") -> str:
    command = [PY, script("steps_report.py"), *args]
    info = launcher.start(store, from_dict({"script": {"command": command}}), name=name)
    wait_for(lambda: store.info(info.id).status == status, timeout=90)
    return info.id


def pane_text(app: object) -> str:
    """The screen below the pane tabs (the detail pane itself)."""
    text = screen_text(app)
    return text[text.index("7 Test") :]


@pilot
async def test_every_pane_of_a_script_run_in_its_own_terms(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    # 30 steps of 0.1 s: long enough for a system sample of its busy child
    run_script(store, "s", "--steps", "30", "--eval", "5", "--sleep", "0.1", "--busy-child")
    app = new_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), timeout=30)
        table = app.screen.query_one(RunTable)
        await until(pilot, lambda: table.row_count == 1, timeout=30)
        row = screen_text(app)
        assert "step 29" in row and "None" not in row and "/0" not in row  # Progress

        await pilot.press("1")
        loss = app.screen.query_one("#plot-loss", CurvePlot)
        await until(pilot, lambda: any(len(ln.y) == 30 for ln in loss.chart.lines), 30)
        assert [ln.label for ln in loss.chart.lines] == ["train loss", "val loss"]

        await pilot.press("2")
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        await until(pilot, lambda: bool(acc.chart.lines), 30, what="accuracy")
        assert [ln.label for ln in acc.chart.lines] == ["val acc"]
        assert list(acc.chart.lines[0].y) == [s / 30 for s in range(0, 30, 5)]

        await pilot.press("3")
        await until(pilot, lambda: "Run process" in pane_text(app), 30, what="system")
        text = pane_text(app)
        assert "Run process (the script, its children and its supervisor)" in text
        cpu = re.search(r"CPU (\d+)% of one core", text)
        assert cpu is not None, text

        await pilot.press("4")
        await until(pilot, lambda: "steps/s" in pane_text(app), 30, what="speed")
        text = pane_text(app)
        assert "step time" in text and "mean" in text
        assert "img/s" not in text and "data wait" not in text and "nan" not in text
        speed = app.screen.query_one("#plot-speed", CurvePlot)
        (rates,) = speed.chart.lines
        finite = [v for v in rates.y if v == v]
        assert finite and all(0.5 < v < 20 for v in finite)  # 0.1 s a step, on a busy machine

        await pilot.press("5")
        await until(pilot, lambda: "status completed" in pane_text(app), 30, what="log")
        assert re.search(r"info \$ \S*python", pane_text(app))  # the command it ran

        await pilot.press("6")
        await until(pilot, lambda: "# command" in pane_text(app), 30, what="config")
        text = pane_text(app)
        words = " ".join(text.split())  # the command wraps where the checkout's path puts it
        assert "$ " in text and "steps_report.py --steps 30" in words and "[script]" in text
        assert "pipeline" not in text and "[model]" not in text

        await pilot.press("7")
        await until(pilot, lambda: "final metrics" in pane_text(app), 30, what="test")
        text = pane_text(app)
        assert "final metrics (completed, step 29)" in text
        assert re.search(r"train loss\s+0\.0333\s+0\.0333\s+29", text), text
        assert re.search(r"val acc\s+0\.8333\s+0\.8333\s+25", text), text
        assert "best val_acc 0.8333 at step 25" in text
        assert "No test results" not in text


@pilot
async def test_accuracy_shows_a_val_loss_when_that_is_all_a_script_reports(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path / "runs")
    run_script(store, "l", "--steps", "6", "--eval", "2", "--sleep", "0", "--vals", "val_loss")
    app = new_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), timeout=30)
        await pilot.press("2")
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        await until(pilot, lambda: bool(acc.chart.lines), 30, what="accuracy")
        assert [ln.label for ln in acc.chart.lines] == ["val loss"]
        assert list(acc.chart.lines[0].y) == [2.0, 2.0 / 3, 2.0 / 5]


@pilot
async def test_a_resumed_script_draws_the_steps_it_replays_once(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    # it saves its state every 5 steps and dies at step 12: resumed, it starts again at 10
    run_id = run_script(store, "r", "--steps", "16", "--every", "5", "--die-at", "12",
                        "--sleep", "0", status="crashed")  # fmt: skip
    launcher.resume(store, run_id)
    wait_for(lambda: store.info(run_id).status == "completed", timeout=90)
    runs = tmp_path / "runs"
    steps = [e["step"] for e in events(runs, run_id, "train")]
    assert steps == [*range(13), *range(10, 16)]  # the events keep what was reported
    (resume,) = events(runs, run_id, "resume")
    assert resume["resumes"] == 1
    app = new_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), timeout=30)
        loss = app.screen.query_one("#plot-loss", CurvePlot)
        await until(pilot, lambda: bool(loss.chart.lines) and len(loss.chart.lines[0].y) > 0, 30)
        train, val = loss.chart.lines
        assert list(train.x) == list(range(16))  # 10, 11, 12 once: the resumed run's
        assert list(train.y) == [1.0 / (s + 1) for s in range(16)]
        assert list(val.x) == [0, 5, 10, 15]


def test_no_step_time_is_measured_across_the_pause_of_a_resume() -> None:
    # two steps a second; crashed at t=3 and resumed at t=100 from step 2 (rows 4 on)
    step = np.array([0.0, 2, 4, 6, 4, 6, 8])
    t = np.array([0.0, 1, 2, 3, 100, 101, 102])
    rates = step_rates(step, t, starts=[4])
    assert list(rates[1:4]) == [2.0, 2.0, 2.0] and list(rates[5:]) == [2.0, 2.0]
    assert np.isnan(rates[0]) and np.isnan(rates[4])  # nothing before it in its stretch
