"""Every screen at 80x24, the size a new user's terminal opens at: what matters is on screen
and whole. Stores are written directly (no training): the main screen with its detail, then one
walk through help, notes, queue, sweep group and compare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.cli import TINY
from helpers.fake_store import listing, make_run, pilot, screen_text, until
from textual.widgets import DataTable, RichLog

from tuneterm.config import loads
from tuneterm.runs import runqueue
from tuneterm.store import EventWriter, RunStore
from tuneterm.tui.rows import device_text, fit_columns
from tuneterm.tui.screens.compare import CompareScreen
from tuneterm.tui.screens.dialogs import HelpScreen, PromptScreen
from tuneterm.tui.screens.group import GroupScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.screens.queue import QueueScreen

NAME = "source: digits 8px fine-tune"
EVAL_LOSS = {"name": "eval_loss", "label": "eval loss", "higher": False, "pane": "loss"}
LONG_LOG = "model resnet18: 11,178,051 of 11,178,051 parameters trainable (100.0%) on 2 x cpu"


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))


def test_a_narrow_list_drops_columns_in_order_and_names_devices_briefly() -> None:
    natural = {"mark": 1, "name": 30, "status": 9, "best": 16, "progress": 11, "epoch": 5,
               "model": 10, "data": 6, "loss": 6, "elapsed": 7, "eta": 5, "device": 6,
               "id": 29}  # fmt: skip
    assert fit_columns(natural, 0) == natural  # not laid out yet: all of them
    shown = fit_columns(natural, 80)
    assert list(shown) == ["mark", "name", "status", "best", "progress", "model"]
    assert sum(shown.values()) + 2 * len(shown) <= 80 and shown["name"] >= 20
    assert device_text("2 x cpu") == "2×cpu" and device_text("cuda:0 (NVIDIA H200)") == "cuda:0"
    assert device_text("8 x cuda (NVIDIA H100)") == "8×cuda"


@pilot
async def test_main_screen_keeps_model_and_wraps_log_and_shows_notes(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = make_run(store, NAME, tags=("demo",), device="2 x cpu",
                   metrics={"task": "classify", "best": "eval_loss", "higher": False,
                            "val": [EVAL_LOSS]},
                   best={"metric": "eval_loss", "value": 0.6901, "epoch": 3})  # fmt: skip
    store.set_label(run.id, notes="lr 3e-3 was too high:\nloss jumps at epoch 2")
    with EventWriter(store.events_dir(run.id), fsync=False, background=False) as w:
        w.emit("log", level="info", msg=LONG_LOG)
    async with listing(store, 1, (80, 24)) as (app, pilot, table):
        await until(pilot, lambda: app.selected == run.id)
        text = screen_text(app)
        for whole in ("eval loss 0.6901", "resnet18", "Model", NAME, "#demo"):
            assert whole in text, (whole, text)
        assert "notes: lr 3e-3 was too high: loss jumps at epoch 2" in text, text
        assert "device" not in table.widths  # dropped at 80 columns, before the model
        await pilot.press("5")
        log = app.screen.query_one("#log-view", RichLog)
        await until(pilot, lambda: any("2 x cpu" in str(s.text) for s in log.lines))
        lines = [s.text.rstrip() for s in log.lines]
        assert all(len(line) <= log.size.width for line in lines)
        assert " ".join(" ".join(lines).split()).count(LONG_LOG) == 1, lines  # wrapped, whole


@pilot
async def test_help_notes_queue_group_and_compare_at_80x24(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    for lr in ("0.1", "0.01"):
        make_run(store, f"sweep lr={lr} digits 8px", lr=float(lr), tags=("sweep:g",))
    runqueue.enqueue(store, loads(TINY), "waiting: digits 8px")
    async with listing(store, 3, (80, 24)) as (app, pilot, table):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Filter the runs" in screen_text(app) or "Filter" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))

        await pilot.press("Q")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        queue = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: queue.row_count == 1)
        assert "waiting: digits 8px" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))

        swept = [i for i, r in enumerate(table.order) if table.infos[r].name.startswith("sweep")]
        table.move_cursor(row=swept[0])
        await until(pilot, lambda: app.selected == table.order[swept[0]])
        await pilot.press("G")
        await until(pilot, lambda: isinstance(app.screen, GroupScreen))
        group = app.screen.query_one("#group-table", DataTable)
        await until(pilot, lambda: group.row_count == 2)
        text = screen_text(app)
        assert "sweep lr=0.1 digits 8px" in text and "train.lr" in text, text
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))

        for row in swept:
            table.move_cursor(row=row)
            await until(pilot, lambda row=row: app.selected == table.order[row])
            await pilot.press("space")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        metrics = app.screen.query_one("#cmp-metrics", DataTable)  # a row per metric here
        await until(pilot, lambda: len(metrics.columns) == 3 and metrics.row_count > 3)
        text = screen_text(app)
        for name in ("sweep lr=0.1 digits 8px", "sweep lr=0.01 digits 8px"):
            assert name in text, text  # whole in the legend
        pair = r"\d\.\d{4} / \d\.\d{4}"
        assert re.search(rf"val acc +{pair} +{pair}", text.split("1 Metrics")[1]), text
