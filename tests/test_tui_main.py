"""Pilot tests of the main screen: the run list, the live detail panes and the run actions,
against a real store whose runs were made through the store API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.fake_store import (
    listing,
    make_run,
    make_store,
    new_app,
    pilot,
    ready,
    screen_text,
    until,
)
from helpers.keys import burst

from tuneterm import monitor
from tuneterm.monitor import GpuSample
from tuneterm.proc import ProcessIdentity
from tuneterm.runs.lifecycle import new_run
from tuneterm.store import EventWriter, RunStore
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.tui.screens.dialogs import ConfirmScreen, PromptScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.widgets.curve import CurvePlot
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture(autouse=True)
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    return tmp_path / "settings"


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor, "gpu_samples", lambda indices=None: [])
    monkeypatch.setattr(
        monitor, "nvml_status", lambda: "NVML unavailable: NVML Shared Library Not Found"
    )


def table(app: Any) -> RunTable:
    return app.screen.query_one(RunTable)


def select(app: Any, name: str) -> None:
    t = table(app)
    t.move_cursor(row=[t.infos[i].name for i in t.order].index(name))


def fake_engine(store: RunStore, run_id: str) -> subprocess.Popen[bytes]:
    """A process the launcher accepts as the run's engine (its command line names both)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "tuneterm.engine", run_id]
    )
    ident = None
    for _ in range(100):
        try:
            ident = ProcessIdentity(
                proc.pid, __import__("psutil").Process(proc.pid).create_time(), run_id
            )
            break
        except Exception:
            continue
    assert ident is not None
    meta = load_meta(store.meta_path(run_id))
    meta.status, meta.pid, meta.pid_start = "running", ident.pid, ident.start_time
    save_meta(store.meta_path(run_id), meta)
    return proc


@pilot
async def test_list_shows_runs_with_columns(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 3)
    async with listing(store, 3) as (app, _pilot, _table):
        text = screen_text(app)
        for word in ("Run", "Status", "Model", "Progress", "Best val", "ETA", "Device"):
            assert word in text
        for run in store.list():
            assert run.name in text and run.status in text
        assert "3 runs, 0 active" in text


@pilot
async def test_list_refreshes_live_and_sorts(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 2)
    async with listing(store, 2) as (app, pilot, t):
        make_run(store, "newcomer", "completed", events=False)
        t = await ready(pilot, 3)
        await pilot.press("S")  # sort by name, ascending
        assert app.screen.sort_key == "name"
        names = [t.infos[i].name for i in t.order]
        assert names == sorted(names)
        await pilot.press("O")
        assert [t.infos[i].name for i in t.order] == sorted(names, reverse=True)


@pilot
async def test_filter_by_name_status_tag_and_config(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 3)
    make_run(store, "tagged", "completed", lr=0.5, tags=("baseline",), events=False)
    async with listing(store, 4) as (app, pilot, t):
        await pilot.press("slash")
        await pilot.press(*"status:failed")
        await until(pilot, lambda: t.row_count == 1)
        assert t.infos[t.order[0]].status == "failed"
        await pilot.press("escape")
        await until(pilot, lambda: t.row_count == 4)
        await pilot.press("slash", *"tag:base", "enter")
        await until(pilot, lambda: t.row_count == 1)
        assert t.has_focus and "tag:base" in screen_text(app)  # in the box, still shown
        await pilot.press("slash", *["backspace"] * 8, *"lr>0.1")
        await until(pilot, lambda: t.row_count == 1 and t.infos[t.order[0]].name == "tagged")
        await pilot.press("escape")
        await until(pilot, lambda: t.row_count == 4)


@pilot
@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_the_filter_box_shows_what_is_typed_and_the_header_keeps_sort(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """At 80x24 a bordered one-row Input showed two border rows and no text; the header
    lost `sort:` past a long runs folder (and repeated the words the box shows); keys typed in
    one burst after `/` went to the run list (as `tmux send-keys / s c r a t c h` sends them)."""
    store = make_store(tmp_path / ("a-long-folder-name-" * 3) / "runs", 2)
    async with listing(store, 2, size) as (app, pilot, _table):
        await burst(pilot, "/", *"scratch")
        box = app.screen.query_one("#filter")
        await until(pilot, lambda: box.value == "scratch")
        assert box.has_focus and box.content_region.height >= 1
        lines = screen_text(app).splitlines()
        header = lines[0]  # the screenshot's window title comes after it
        typed = [ln[box.region.x : box.region.right].strip() for ln in lines[1:]]
        assert "scratch" in typed, "\n".join(lines)
        assert "sort: " in header and " 0 shown" in header, header  # the words are in the box
        assert len(header.rstrip()) <= size[0]
        await burst(pilot, "/", "x")  # "/" inside the box is text, not the key again
        await until(pilot, lambda: box.value == "scratch/x")


@pilot
async def test_detail_panes_and_chart_keys(tmp_path: Path, no_nvml: None) -> None:
    store = make_store(tmp_path / "runs", 2)
    async with listing(store, 2) as (app, pilot, _table):
        select(app, "run0")
        await until(pilot, lambda: app.selected in app.histories
                    and len(app.histories[app.selected].train) == 60)  # fmt: skip
        plot = app.screen.query_one("#plot-loss", CurvePlot)
        await until(pilot, lambda: plot.chart.lines and len(plot.chart.lines[0].y) == 60)
        assert [line.label for line in plot.chart.lines] == ["train loss", "val loss"]
        await pilot.press("z", "x", "g")
        assert app.smoothing_weight == 0.9 and app.x_axis == "epoch" and app.log_y
        assert plot.chart.log_y and plot.chart.xlabel == "epoch"
        assert "x: epoch" in screen_text(app)
        await pilot.press("2")
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        # 3 classes: top-5 is always 1, so it is not drawn (test_top5_needs_more_than_5_classes)
        assert [line.label for line in acc.chart.lines] == ["val acc"]
        await pilot.press("3")
        await until(pilot, lambda: "NVML unavailable" in screen_text(app))
        assert "No GPU figures" in screen_text(app) and "RSS" in screen_text(app)
        await pilot.press("4")
        await until(pilot, lambda: "img/s" in screen_text(app))
        await pilot.press("5")
        await until(pilot, lambda: "data digits: 3 classes" in screen_text(app))
        await pilot.press("6")
        await until(pilot, lambda: 'weights = "none"' in screen_text(app))
        await pilot.press("7")
        await until(pilot, lambda: "per class" in screen_text(app))
        text = screen_text(app)
        assert "acc 0.9" in text and "confusion" in text


@pilot
async def test_top5_needs_more_than_5_classes(tmp_path: Path, no_nvml: None) -> None:
    store = RunStore(tmp_path / "runs")
    make_run(store, "three", classes=["a", "b", "c"])
    make_run(store, "ten", classes=[str(i) for i in range(10)])
    async with listing(store, 2) as (app, pilot, _table):
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        await pilot.press("2")
        for name, want in (("ten", ["val acc", "val top-5"]), ("three", ["val acc"])):
            select(app, name)

            def drawn(want: list[str] = want) -> bool:
                h = app.histories.get(app.selected or "")
                lines = acc.chart.lines
                return h is not None and len(h.val) == 3 and [ln.label for ln in lines] == want

            await until(pilot, drawn, what=f"{want} for {name}")
            assert len(acc.chart.lines[0].y) == 3
        await pilot.press("7")
        await until(pilot, lambda: "per class" in screen_text(app))
        assert "acc 0.9000" in screen_text(app) and "top-5" not in screen_text(app)
        select(app, "ten")
        await until(pilot, lambda: "top-5 1.0000" in screen_text(app), what="top-5 of ten")


@pytest.mark.parametrize("declared_by", ["meta.json", "registry"])
@pilot
async def test_a_metric_only_the_run_declares_draws_its_curve(
    tmp_path: Path, no_nvml: None, monkeypatch: pytest.MonkeyPatch, declared_by: str
) -> None:
    """A kind no front end knows (digit regression): its meta.json says what it measures, or
    (a run from before meta.json carried it) the kind's spec, registered only here."""
    from tuneterm import tasks
    from tuneterm.tasks import Metric, TaskSpec

    mae = Metric("val_mae", "MAE", higher=False, fmt=".3f")
    kind = TaskSpec(name="digit-regress", noun="regression", summary="digits as numbers",
                    engine="tests.no_such_engine", datasets=("digits",), val_metrics=(mae,),
                    test_metrics=(Metric("test_mae", "MAE", higher=False, fmt=".3f"),),
                    select=("val_mae",))  # fmt: skip
    store = RunStore(tmp_path / "runs")
    metrics = kind.metric_spec("val_mae")
    if declared_by == "registry":
        monkeypatch.setitem(tasks._REGISTRY, kind.name, kind)
        metrics = {}
    info = make_run(store, "reg", events=False, task="digit-regress", metrics=metrics,
                    classes=[], final={"test_mae": 0.25})  # fmt: skip
    maes = [1.5, 0.9, 0.4]
    with EventWriter(store.events_dir(info.id), fsync=False, background=False) as w:
        for epoch, value in enumerate(maes, start=1):
            w.emit(
                "train", step=epoch * 10, epoch=epoch, loss=value, lr=0.1, examples_s=5, data_wait=0
            )
            w.emit("val", step=epoch * 10, epoch=epoch, val_mae=value, val_loss=value * 2)
    async with listing(store, 1) as (app, pilot, _table):
        plot = app.screen.query_one("#plot-loss", CurvePlot)
        await until(pilot, lambda: len(plot.chart.lines) == 2, what="train and val loss")
        assert plot.chart.lines[1].y.tolist() == [3.0, 1.8, 0.8]
        await pilot.press("2")
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        await until(pilot, lambda: bool(acc.chart.lines), what="the MAE curve")
        assert [line.label for line in acc.chart.lines] == ["val MAE"]
        assert acc.chart.lines[0].y.tolist() == maes
        await pilot.press("7")
        await until(pilot, lambda: "MAE 0.250" in screen_text(app), what="test MAE")


NO_TORCH_DRIVER = """
import asyncio, sys
from pathlib import Path
from helpers.fake_store import new_app, screen_text, until
from helpers.waiting import settled
from tuneterm.store import RunStore
from tuneterm.tui.widgets.runtable import RunTable

async def main() -> None:
    app = new_app(RunStore(Path(sys.argv[1])))
    async with app.run_test(size=(120, 40)) as pilot:
        table = lambda: app.screen.query_one(RunTable)
        await until(pilot, lambda: table().row_count == int(sys.argv[2]))
        for row in range(table().row_count):
            table().move_cursor(row=row)
            for key in "12345676":  # the config pane last: its pipeline is read by a worker
                await pilot.press(key)
                await settled(pilot)  # the pane drawn, whatever its worker read
            await until(pilot, lambda: "training pipeline" in screen_text(app))
        table().move_cursor(row=0)
        await pilot.press("space", "space", "space", "c")  # compare three runs
        await until(pilot, lambda: "compare" in screen_text(app))
        await pilot.press("2", "1", "escape", "Q")  # and the queue
        await until(pilot, lambda: type(app.screen).__name__ == "QueueScreen")
        await settled(pilot)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
    print("LOADED", loaded)

asyncio.run(main())
"""


@pytest.mark.timeout(600)  # 40 panes, each settled: ~35 s alone, ~110 s beside a suite
def test_no_pane_imports_torch(tmp_path: Path) -> None:
    """Every pane of every kind of run, compare and the queue, in a fresh interpreter: neither
    torch nor torchvision is ever imported (not even by a worker)."""
    from tuneterm.config import loads

    store = make_store(tmp_path / "runs", 2)
    store.create(
        new_run(loads('[run]\nname = "aug"\n[data]\naugment = "randaugment"\n[mix]\nmixup = 0.2'))
    )
    store.create(new_run(loads('[run]\ntask = "text"\nname = "txt"\n[data]\ndataset = "topics"')))
    det = '[run]\ntask = "detect"\nname = "det"\n[data]\ndataset = "shapes-boxes"\n'
    store.create(new_run(loads(det + '[train]\nmetric = "val_map"')))
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]),
           "TUNETERM_CONFIG_DIR": str(tmp_path / "settings")}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH_DRIVER, str(store.root), "5"],
        capture_output=True, text=True, env=env, timeout=540,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOADED []" in out.stdout, out.stdout[-2000:]


@pilot
async def test_gpu_pane_with_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = [GpuSample(0, "NVIDIA H100 80GB HBM3", 87.0, 40 * 2**30, 80 * 2**30, 61.0, 512.0)]
    monkeypatch.setattr(monitor, "gpu_samples", lambda indices=None: fake)
    store = make_store(tmp_path / "runs", 1)
    async with listing(store, 1) as (app, pilot, _table):
        await pilot.press("3")
        await until(pilot, lambda: "H100" in screen_text(app))
        text = screen_text(app)
        assert "87%" in text and "40.0 GiB / 80.0 GiB" in text and "61°C" in text
        assert "512 W" in text and "NVML unavailable" not in text


@pilot
async def test_live_events_reach_the_chart(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    info = make_run(store, "live", "running", events=False)
    async with listing(store, 1) as (app, pilot, _table):
        plot = app.screen.query_one("#plot-loss", CurvePlot)
        with EventWriter(store.events_dir(info.id), flush_interval=0.05) as w:
            for step in range(1, 6):
                w.emit(
                    "train", step=step, epoch=1, loss=1.0 / step, lr=0.1, examples_s=1, data_wait=0
                )
            await until(pilot, lambda: plot.chart.lines and len(plot.chart.lines[0].y) == 5)
            w.emit("resume", step=3, epoch=0, batch=3, from_checkpoint=True)
            w.emit("train", step=4, epoch=1, loss=0.2, lr=0.1, examples_s=1, data_wait=0)
            await until(pilot, lambda: plot.chart.lines[0].x.tolist() == [1, 2, 3, 4])


@pilot
async def test_j_and_k_move_in_the_run_list_as_the_arrows_do(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 3)
    async with listing(store, 3, (100, 30)) as (app, pilot, t):
        first = t.selected_id
        await pilot.press("j")
        assert t.cursor_row == 1 and app.selected == t.order[1]
        await pilot.press("j", "j")  # stops at the last run
        assert t.cursor_row == 2
        await pilot.press("k")
        assert t.cursor_row == 1
        await pilot.press("up")
        assert t.cursor_row == 0 and app.selected == first
        await pilot.press("down")
        assert t.cursor_row == 1
        assert isinstance(app.screen, MainScreen)  # k moved; it opened no kill dialog


@pilot
async def test_rename_tags_notes(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 1)
    run_id = store.list()[0].id
    async with listing(store, 1, (100, 30)) as (app, pilot, _table):
        await pilot.press("R")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("ctrl+u", *"best one", "enter")
        await until(pilot, lambda: store.info(run_id).name == "best one")
        await pilot.press("t", *"a, b c", "enter")
        await until(pilot, lambda: store.info(run_id).label.tags == ["a", "b", "c"])
        await pilot.press("o", *"lr too high", "enter")
        await until(pilot, lambda: store.info(run_id).label.notes == "lr too high")
        await pilot.press("o", "x", "escape")  # cancelled: nothing written
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert store.info(run_id).label.notes == "lr too high"
        await until(pilot, lambda: "best one" in screen_text(app))
        await pilot.press("R", "ctrl+u", *"a/b", "enter")  # refused by the store: shown
        await until(pilot, lambda: any("failed" in str(n.title) for n in app._notifications))


@pilot
async def test_delete_asks_first(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 2)
    async with listing(store, 2, (100, 30)) as (app, pilot, t):
        victim = t.selected_id
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen) and len(store.ids()) == 2
        await pilot.press("d", "y")
        await ready(pilot, 1)
        assert victim not in store.ids()


@pilot
async def test_stop_kill_resume_refused_for_wrong_status(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 1)  # completed
    async with listing(store, 1, (100, 30)) as (app, pilot, _table):
        for key in ("s", "K", "r"):
            await pilot.press(key)
            assert isinstance(app.screen, MainScreen)  # no dialog, a warning instead
        messages = " ".join(str(n.message) for n in app._notifications)
        assert "nothing to stop" in messages and "nothing to kill" in messages
        assert "only stopped, crashed, failed runs resume" in messages


@pilot
async def test_stop_and_kill_signal_the_engine(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    a = make_run(store, "a", "running", events=False)
    b = make_run(store, "b", "running", events=False)
    procs = {a.id: fake_engine(store, a.id), b.id: fake_engine(store, b.id)}
    app = new_app(store)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await ready(pilot, 2)
            await until(pilot, lambda: "2 active" in screen_text(app))
            select(app, "a")
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(pilot, lambda: procs[a.id].poll() is not None, what="SIGTERM")
            select(app, "b")
            await pilot.press("K", "enter")
            await until(pilot, lambda: procs[b.id].poll() is not None, what="SIGKILL")
            assert store.info(b.id).status == "crashed"  # killed: no final status written
            await until(pilot, lambda: "0 active" in screen_text(app))
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


@pilot
async def test_quitting_leaves_runs_alone(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    a = make_run(store, "a", "running", events=False)
    proc = fake_engine(store, a.id)
    try:
        async with listing(store, 1, (100, 30)) as (_app, pilot, _table):
            await pilot.press("q")
        assert proc.poll() is None and store.info(a.id).status == "running"
    finally:
        proc.kill()
        proc.wait()


@pilot
async def test_usable_at_80x24(tmp_path: Path) -> None:
    store = make_store(tmp_path / "runs", 3)
    async with listing(store, 3, (80, 24)) as (app, pilot, _table):
        await until(pilot, lambda: "Help" in screen_text(app), what="the footer")
        text = screen_text(app)
        assert "run0" in text and "New" in text and "Compare" in text
        assert "1 Loss" in text


@pilot
async def test_config_pane_shows_the_resolved_pipeline(tmp_path: Path, no_nvml: None) -> None:
    from tuneterm.config import loads

    store = make_store(tmp_path / "runs", 1)
    cfg = loads(
        '[run]\nname = "aug"\n[model]\nweights = "none"\n'
        '[data]\nimage_size = 16\naugment = "light"\n[mix]\nmixup = 0.2\n'
    )
    store.create(new_run(cfg))
    async with listing(store, 2) as (app, pilot, _table):
        select(app, "aug")
        await pilot.press("6")
        # torchvision is imported in a worker: the first one can take seconds on a slow CI box
        await until(pilot, lambda: "RandomCrop" in screen_text(app), timeout=60)
        text = screen_text(app)
        assert "training pipeline (resolved)" in text and "RandomHorizontalFlip" in text
        assert "MixUp(alpha=0.2)" in text and 'name = "aug"' in text
        select(app, "run0")  # no augmentation: the pipeline says so, per run
        await until(pilot, lambda: "RandomCrop" not in screen_text(app), timeout=60)
        await until(pilot, lambda: "uint8 3x16x16" in screen_text(app), timeout=60)
        assert "MixUp" not in screen_text(app)
