"""Figures for the TUI's scale goals (issue 3). Prints measurements, never pass/fail.

    python bench/tui_bench.py [--runs 1000] [--points 1000000]

1. first paint with N runs in the store (goal < 1 s): app start to the run list on screen;
2. redraw of a curve of P points (goal < 50 ms): downsample + plotext build at 120 columns;
3. engine-emit to screen (goal < 1 s): an EventWriter emits a point; time until the chart has it;
4. key latency while 4 runs stream (goal < 100 ms): keys pressed while 4 writers emit.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.fake_store import make_run

from tuneterm.config import run_config
from tuneterm.runs.lifecycle import new_run
from tuneterm.store import EventWriter, RunStore
from tuneterm.store.meta import load_meta, save_meta


def fmt(ms: float, goal: float) -> str:
    return f"{ms:8.1f} ms   goal {goal:g} ms   ratio {ms / goal:.2f}"


def make_many(root: Path, n: int) -> RunStore:
    store = RunStore(root)
    template = make_run(store, "r0", "completed", events=False)
    meta = load_meta(template.path / "meta.json")
    cfg = run_config(store, template.id)
    for i in range(1, n):
        info = store.create(new_run(cfg, name=f"r{i}"))
        meta.id, meta.name = info.id, f"r{i}"
        save_meta(info.path / "meta.json", meta)
    return store


async def first_paint(store: RunStore, size: tuple[int, int]) -> tuple[float, int]:
    from tuneterm.tui.app import TuneTermApp
    from tuneterm.tui.widgets.runtable import RunTable

    app = TuneTermApp(store)
    start = time.perf_counter()
    async with app.run_test(size=size) as pilot:
        while True:
            screen = app.screen
            tables = screen.query(RunTable) if screen is not None else []
            if tables and tables.first().row_count:
                break
            await pilot.pause(0.005)
        took = time.perf_counter() - start
        rows = tables.first().row_count
    return took * 1000, rows


def curve_redraw(points: int, width: int = 120, height: int = 14) -> list[float]:
    import numpy as np
    from textual_plotext.plot import Plot

    from tuneterm.tui.history import RunHistory, curve

    h = RunHistory()
    steps = np.arange(1, points + 1, dtype=np.float64)
    h.train.extend(
        {
            "step": steps,
            "epoch": steps / 1000,
            "t": steps,
            "loss": 2 * np.exp(-steps / (points / 5)) + 0.1 * np.random.rand(points),
            "lr": np.full(points, 1e-3),
            "examples_s": np.full(points, 30.0),
            "data_wait": np.full(points, 0.1),
            "gpu_mem": np.full(points, math.nan),
        }
    )
    plot = Plot()
    times = []
    for smoothing in (0.0, 0.6) * 5:
        t = time.perf_counter()
        c = curve(h.x_of(h.train, "step"), h.train.np("loss"), width - 10, smoothing)
        plot.clear_figure()
        plot.plotsize(width, height)
        plot.plot(c.x, c.y, marker="braille", color="cyan", label="train loss")
        plot.build()
        times.append((time.perf_counter() - t) * 1000)
    return times


async def emit_to_screen(root: Path) -> list[float]:
    from tuneterm.tui.app import TuneTermApp

    store = RunStore(root)
    info = make_run(store, "live", "running", events=False)
    app = TuneTermApp(store, poll_interval=0.25)
    lat = []
    writer = EventWriter(store.events_dir(info.id))
    async with app.run_test(size=(120, 40)) as pilot:
        while app.selected != info.id:
            await pilot.pause(0.01)
        for i in range(1, 11):
            t = time.perf_counter()
            writer.emit(
                "train", step=i, epoch=1, loss=1.0 / i, lr=1e-3, examples_s=30.0, data_wait=0.1
            )
            while True:
                h = app.histories.get(info.id)
                if h is not None and len(h.train) >= i:
                    break
                await pilot.pause(0.01)
            await pilot.pause(0)  # the chart repaints on this refresh
            lat.append((time.perf_counter() - t) * 1000)
    writer.close()
    return lat


STREAMER = """
import sys, time
from pathlib import Path
from tuneterm.store import EventWriter
with EventWriter(Path(sys.argv[1])) as w:
    step, end = 0, time.time() + float(sys.argv[2])
    while time.time() < end:
        step += 1
        w.emit("train", step=step, epoch=1, loss=1 / step, lr=1e-3, examples_s=30.0, data_wait=0.1)
        time.sleep(1 / float(sys.argv[3]))
"""


async def keys_while_streaming(root: Path, rate: float = 50.0) -> list[float]:
    """Four engine-like processes each emit `rate` train events/s; all four are marked (so
    watched); keys are pressed and timed until their effect is visible in the app's state."""
    import subprocess

    from textual.widgets import TabbedContent

    from tuneterm.tui.app import TuneTermApp

    store = RunStore(root)
    infos = [make_run(store, f"s{i}", "running", events=False) for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STREAMER, str(store.events_dir(i.id)), "40", str(rate)]
        )
        for i in infos
    ]
    app = TuneTermApp(store)
    lat = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.0)
        for info in infos:
            app.toggle_mark(info.id)
        await pilot.pause(2.0)

        def state() -> tuple[object, ...]:
            screen = app.screen
            tabs = screen.query_one(TabbedContent).active
            return (app.x_axis, app.smoothing, app.log_y, tabs, app.selected)

        for key in ["down", "up", "4", "1", "2", "x", "z", "g"] * 3:
            before = state()
            t = time.perf_counter()
            task = asyncio.create_task(pilot.press(key))
            while state() == before and time.perf_counter() - t < 5:
                await asyncio.sleep(0.001)
            lat.append((time.perf_counter() - t) * 1000)
            await task
            await pilot.pause(0.2)
        streamed = sum(len(app.histories[i.id].train) for i in infos if i.id in app.histories)
    for p in procs:
        p.kill()
        p.wait()
    print(f"  ({streamed} train points streamed into the 4 histories while keys were pressed)")
    return lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    os.environ.setdefault("TUNETERM_CONFIG_DIR", tempfile.mkdtemp())
    print(f"tuneterm TUI bench  (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = make_many(Path(tmp) / "many", args.runs)
        print(f"  (made {args.runs} runs in {time.perf_counter() - t:.1f} s)")
        paints = [asyncio.run(first_paint(store, (120, 40))) for _ in range(3)]
        ms, rows = statistics.median(p[0] for p in paints), paints[0][1]
        print(f"first paint, {rows} runs listed (median of 3) {fmt(ms, 1000)}"
              f"   all {', '.join(f'{p[0]:.0f}' for p in paints)} ms")  # fmt: skip
        times = curve_redraw(args.points)
        print(f"redraw {args.points:,}-point curve (median of {len(times)})"
              f" {fmt(statistics.median(times), 50)}   max {max(times):.1f} ms")  # fmt: skip
        lat = asyncio.run(emit_to_screen(Path(tmp) / "emit"))
        print(f"engine emit -> on screen (median)    {fmt(statistics.median(lat), 1000)}"
              f"   max {max(lat):.0f} ms")  # fmt: skip
        lat = asyncio.run(keys_while_streaming(Path(tmp) / "stream"))
        print(f"key answered, 4 runs streaming (p50) {fmt(statistics.median(lat), 100)}"
              f"   max {max(lat):.0f} ms")  # fmt: skip
        print("  (streaming: 4 engine-like processes, 50 train events/s each, all 4 watched)")


if __name__ == "__main__":
    main()
