"""Builds run stores for the TUI tests and bench through the store API (no engine needed), and
drives the app: `new_app`, `pilot`, `until` (from helpers/waiting.py), `screen_text`."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from helpers.configs import tiny_toml
from helpers.waiting import until
from tuneterm.config import loads
from tuneterm.runs.lifecycle import new_run
from tuneterm.store import EventWriter, RunInfo, RunStore
from tuneterm.store.meta import load_meta, save_meta

__all__ = [
    "listing",
    "make_run",
    "make_store",
    "new_app",
    "pilot",
    "ready",
    "screen_text",
    "until",
    "write_events",
]


def make_run(
    store: RunStore,
    name: str,
    status: str = "completed",
    steps: int = 60,
    epochs: int = 3,
    lr: float = 0.001,
    tags: tuple[str, ...] = (),
    events: bool = True,
    seed: float = 1.0,
    speed_field: str = "examples_s",
    **meta: Any,
) -> RunInfo:
    """A run as the engine would leave it: meta.json, config.toml and an event queue
    (`speed_field="img_s"`: as a tuneterm before `examples_s` wrote its train events)."""
    cfg = loads(
        tiny_toml(
            name=name,
            per_class=20,
            epochs=epochs,
            lr=lr,
            batch_size=None,
            log_every=None,
            threads=None,
        )
    )
    info = store.create(new_run(cfg))
    if tags:
        store.set_label(info.id, tags=list(tags))
    m = load_meta(info.path / "meta.json")
    now = time.time()
    per_epoch = max(1, steps // epochs)
    done = steps if status == "completed" else steps // 2
    m.status, m.started, m.total_steps, m.step = status, now - 300, steps, done
    m.epoch = done // per_epoch
    m.ended = now if status not in ("running", "starting") else None
    m.last_loss = 2 * math.exp(-done / (40 * seed))
    m.device, m.throughput, m.classes = "cpu", 28.5, ["0", "1", "2"]
    m.best = {"metric": "val_acc", "value": 0.5 + 0.1 * m.epoch / seed, "epoch": m.epoch}
    if status == "completed":
        m.final = {
            "test_acc": 0.9,
            "test_loss": 0.3,
            "test_top5": 1.0,
            "per_class": {"0": 0.95, "1": 0.85, "2": 0.9},
            "confusion": [[19, 1, 0], [2, 17, 1], [1, 1, 18]],
            "best_epoch": epochs,
        }
    if status == "running":
        m.pid = 0  # no process: readers derive "crashed" unless a test fakes liveness
    for key, value in meta.items():
        setattr(m, key, value)
    save_meta(info.path / "meta.json", m)
    if events:
        with EventWriter(store.events_dir(info.id), fsync=False, background=False) as w:
            write_events(w, done, per_epoch, status, seed, speed_field)
    return store.info(info.id)


def write_events(
    w: EventWriter,
    steps: int,
    per_epoch: int,
    status: str,
    seed: float,
    speed_field: str = "examples_s",
) -> None:
    w.emit("status", status="running")
    w.emit("log", level="info", msg="data digits: 3 classes, train 60, val 15, test 15")
    for step in range(1, steps + 1):
        w.emit(
            "train",
            step=step,
            epoch=(step - 1) // per_epoch + 1,
            loss=2 * math.exp(-step / (40 * seed)) + 0.05 * math.sin(step),
            lr=1e-3,
            data_wait=0.1,
            **{speed_field: 28.0 + step % 5},
        )
        if step % per_epoch == 0:
            e = step // per_epoch
            w.emit("val", epoch=e, step=step, val_loss=1.0 / e, val_acc=0.5 + 0.1 * e / seed,
                   val_top5=1.0)  # fmt: skip
    w.emit("sys", cpu=150.0, rss=5e8, sys_cpu=60.0, ram_used=8e9, ram_total=24e9)
    if status == "completed":
        w.emit("test", split="test", loss=0.3, acc=0.9, top5=1.0, n=15,
               per_class={"0": 0.95, "1": 0.85, "2": 0.9},
               confusion=[[19, 1, 0], [2, 17, 1], [1, 1, 18]], epoch=3)  # fmt: skip
        w.emit("status", status="completed")
    elif status == "failed":
        w.emit("error", message="CUDA out of memory", traceback="Traceback...\nRuntimeError: OOM")
        w.emit("status", status="failed", error="CUDA out of memory")


def make_store(root: Path, n: int = 3) -> RunStore:
    store = RunStore(root)
    statuses = ["completed", "failed", "stopped", "completed"]
    for i in range(n):
        make_run(store, f"run{i}", statuses[i % len(statuses)], lr=0.001 * (i + 1), seed=1 + i)
    return store


def new_app(store: RunStore, **kw: Any) -> Any:
    from tuneterm.tui.app import TuneTermApp
    from tuneterm.tui.settings import load_settings

    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("scan_interval", 0.2)
    kw.setdefault("gpu_interval", 0.5)
    return TuneTermApp(store, settings=load_settings(), **kw)


async def ready(pilot: Any, n: int) -> Any:
    """Wait until the app shows the main screen with `n` rows in its run table; the table."""
    from tuneterm.tui.screens.main import MainScreen
    from tuneterm.tui.widgets.runtable import RunTable

    def table() -> Any:
        return pilot.app.screen.query_one(RunTable)

    await until(pilot, lambda: isinstance(pilot.app.screen, MainScreen), what="main screen")
    await until(pilot, lambda: table().row_count == n, what=f"{n} rows")
    return table()


@contextlib.asynccontextmanager
async def listing(
    store: RunStore, n: int, size: tuple[int, int] = (120, 40)
) -> AsyncIterator[tuple[Any, Any, Any]]:
    """The app on `store` run under Pilot, its run list showing `n` runs: (app, pilot, table)."""
    app = new_app(store)
    async with app.run_test(size=size) as pilot:
        yield app, pilot, await ready(pilot, n)


def screen_text(app: Any) -> str:
    """The visible text of the screen, one line per row, columns kept."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, dict[int, str]] = {}
    pattern = r'<text[^>]*?x="([\d.]+)"[^>]*?y="([\d.]+)"[^>]*?>(.*?)</text>'
    for x, y, chunk in re.findall(pattern, svg):
        rows.setdefault(float(y), {})[round(float(x) / 12.2)] = html.unescape(chunk)
    lines = []
    for y in sorted(rows):
        line = ""
        for col, chunk in sorted(rows[y].items()):
            line = line.ljust(col) + chunk
        lines.append(line.replace("\xa0", " "))
    return "\n".join(lines)


def pilot(fn: Any) -> Any:
    """Run an async Pilot test on a fresh event loop (no asyncio plugin needed)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper
