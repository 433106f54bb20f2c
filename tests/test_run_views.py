"""Every front end renders a run from its metric spec: ls (piped and at a terminal width),
show, compare and sweep-best, for the built-in kinds and a kind registered only in tests."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import TINY, Cli
from helpers.fake_store import make_run
from rich.console import Console

from tuneterm import tasks
from tuneterm.cli import listing
from tuneterm.config import loads, parse_toml
from tuneterm.config import section as config_section
from tuneterm.runs import runqueue, sweep, view
from tuneterm.runs.lifecycle import new_run
from tuneterm.runs.watch import watch
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunInfo, RunStore

PLUGIN = "tests.helpers.toykind"  # the CLI subprocesses run from the repository root


def finished_run(
    store: RunStore,
    name: str,
    task: str,
    configured: str,
    best: dict[str, float],
    final: dict[str, float] | None = None,
    spec: tasks.TaskSpec | None = None,
    **meta: Any,
) -> RunInfo:
    """A completed run of `task` as its engine leaves it: metric spec, best and final."""
    info = store.create(new_run(loads(TINY), name))
    m = load_meta(info.path / "meta.json")
    kind = spec or tasks.get(task)
    m.task, m.metrics = kind.name, kind.metric_spec(configured)
    metric = kind.best_metric(configured)
    m.best = {"metric": metric, "value": best[metric], "epoch": 3, **best}
    m.final = dict(final or {})
    now = time.time()
    m.status, m.started, m.ended, m.epoch, m.epochs = "completed", now - 90, now, 4, 4
    m.step = m.total_steps = 40
    for key, value in meta.items():
        setattr(m, key, value)
    save_meta(info.path / "meta.json", m)
    return store.info(info.id)


def sweep_of(
    store: RunStore,
    group: str,
    task: str,
    configured: str,
    values: list[dict[str, float]],
    spec: tasks.TaskSpec | None = None,
) -> list[str]:
    """A finished sweep over train.lr, one run per `values` entry (its best val metrics)."""
    lrs = ",".join(str(0.1 / 10**i) for i in range(len(values)))
    pts = sweep.points([sweep.parse_values(f"train.lr={lrs}", "--grid")], [])
    sweep.build(parse_toml(TINY), pts, "t")
    made = [(runqueue.enqueue(store, c, n), p) for (c, n), p in zip(
        sweep.prepare(group, pts), pts, strict=True)]  # fmt: skip
    sweep.record(store, group, ["train.lr"], made)
    kind = spec or tasks.get(task)
    for (info, _), best in zip(made, values, strict=True):
        m = load_meta(info.path / "meta.json")
        metric = kind.best_metric(configured)
        m.task, m.metrics = kind.name, kind.metric_spec(configured)
        m.status, m.ended = "completed", time.time()
        m.best = {"metric": metric, "value": best[metric], "epoch": 2, **best}
        save_meta(info.path / "meta.json", m)
    return [i.id for i, _ in made]


# -- sweep-best ranks every kind by its own metric --------------------------------------------
def test_sweep_best_ranks_a_detection_sweep_by_val_map(cli: Cli, runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    maps = [0.31, 0.52, 0.44]
    values = [{"val_map": v, "val_map50": 1 - v} for v in maps]
    ids = sweep_of(store, "det", "detect", "val_map", values)
    data = cli.json("sweep-best", "det")
    assert data["metric"] == "val_map" and data["higher_is_better"] is True
    assert [r["id"] for r in data["runs"]] == [ids[1], ids[2], ids[0]]
    assert data["best"]["value"] == pytest.approx(0.52)
    by_map50 = cli.json("sweep-best", "det", "--metric", "val_map50")
    assert [r["id"] for r in by_map50["runs"]] == [ids[0], ids[2], ids[1]]
    text = " ".join(cli("sweep-best", "det", check=0).stdout.split())
    assert "sorted by val_map, higher first" in text and "0.5200" in text
    proc = cli("sweep-best", "det", "--metric", "val_acc", check=2)
    assert '--metric = "val_acc"' in proc.stderr and "val_map" in proc.stderr


def test_sweep_best_ranks_a_text_sweep_by_val_f1(cli: Cli, runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    f1s = [0.7, 0.6, 0.8]
    values = [{"val_f1": v, "val_acc": 1.5 - v, "val_loss": 1 - v} for v in f1s]
    ids = sweep_of(store, "txt", "text", "val_f1", values)
    data = cli.json("sweep-best", "txt")
    assert data["metric"] == "val_f1" and data["higher_is_better"] is True
    assert [r["id"] for r in data["runs"]] == [ids[2], ids[0], ids[1]]
    by_loss = cli.json("sweep-best", "txt", "--metric", "val_loss")  # lower first
    assert [r["id"] for r in by_loss["runs"]] == [ids[2], ids[0], ids[1]]
    assert by_loss["higher_is_better"] is False
    by_acc = cli.json("sweep-best", "txt", "--metric", "val_acc")  # another val metric
    assert [r["id"] for r in by_acc["runs"]] == [ids[1], ids[0], ids[2]]


# -- a kind registered only in tests ----------------------------------------------------------
@pytest.fixture
def regress(monkeypatch: pytest.MonkeyPatch) -> tasks.TaskSpec:
    """The test-only kind, registered here and in every CLI process the test starts."""
    monkeypatch.setenv("TUNETERM_PLUGINS", PLUGIN)
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))  # undone after the test
    # ...and its [regression] table, or every later config.toml of this process would carry it
    monkeypatch.setattr(config_section, "_SECTIONS", dict(config_section._SECTIONS))
    from helpers import toykind

    return tasks.register(toykind.SPEC)


def test_a_test_only_kind_shows_its_metric_everywhere(
    cli: Cli, runs_dir: Path, regress: tasks.TaskSpec
) -> None:
    store = RunStore(runs_dir)
    a = finished_run(store, "reg-a", regress.name, "val_mae", {"val_mae": 0.25, "val_loss": 0.4},
                     {"test_mae": 0.27}, spec=regress)  # fmt: skip
    b = finished_run(store, "reg-b", regress.name, "val_mae", {"val_mae": 0.125, "val_loss": 0.3},
                     {"test_mae": 0.13}, spec=regress)  # fmt: skip
    rows = {r["id"]: r for r in cli.json("ls")}
    assert rows[a.id]["best_metric"]["label"] == "MAE"
    assert rows[a.id]["best_metric"]["higher"] is False
    assert rows[b.id]["best_metric"]["text"] == "0.1250"
    piped = cli("ls", check=0).stdout
    assert "MAE 0.2500" in piped and "MAE 0.1250" in piped
    shown = cli.json("show", b.id)
    assert shown["best_metric"]["metric"] == "val_mae" and shown["best"]["val_mae"] == 0.125
    compared = cli.json("compare", a.id, b.id)["metrics"]
    assert compared["best.val_mae"] == {a.id: 0.25, b.id: 0.125}
    assert compared["final.test_mae"] == {a.id: 0.27, b.id: 0.13}
    assert "best.val_acc" not in compared  # not a metric of this kind
    table = cli("compare", a.id, b.id, check=0).stdout
    assert "best.val_mae" in table and "0.1250" in table
    # the TUI's run list reads the same view
    from tuneterm.tui.rows import best_text, sort_runs

    assert best_text(store.info(b.id)) == "MAE 0.1250"
    assert [r.id for r in sort_runs([store.info(a.id), store.info(b.id)], "best", True)] == [
        b.id,
        a.id,
    ]  # lower MAE is better: b first when sorted best-first


def test_sweep_best_ranks_a_test_only_kind_lower_first(
    cli: Cli, runs_dir: Path, regress: tasks.TaskSpec
) -> None:
    store = RunStore(runs_dir)
    maes = [0.4, 0.2, 0.3]
    ids = sweep_of(store, "reg", regress.name, "val_mae",
                   [{"val_mae": v, "val_loss": v * 2} for v in maes], spec=regress)  # fmt: skip
    data = cli.json("sweep-best", "reg")
    assert data["metric"] == "val_mae" and data["higher_is_better"] is False
    assert [r["id"] for r in data["runs"]] == [ids[1], ids[2], ids[0]]
    table = sweep.group_table(store, "reg")
    assert table.best is not None and table.best.info.id == ids[1] and not table.higher


# -- ls: whole values when piped, columns that fit at a terminal ------------------------------
LONG_NAME = "a-rather-long-run-name-that-would-not-fit-anywhere-narrow"


def ls_store(runs_dir: Path) -> list[RunInfo]:
    store = RunStore(runs_dir)
    return [
        finished_run(store, LONG_NAME, "classify", "val_acc", {"val_acc": 0.9375},
                     {"test_acc": 0.9}, device="cuda:0 (NVIDIA H200 141 GB)", last_loss=0.123),
        finished_run(store, "short", "detect", "val_map", {"val_map": 0.5, "val_map50": 0.7},
                     device="cpu", last_loss=0.5),
    ]  # fmt: skip


def test_ls_piped_prints_every_value_whole_tab_separated(cli: Cli, runs_dir: Path) -> None:
    runs = ls_store(runs_dir)
    lines = cli("ls", check=0).stdout.splitlines()
    assert "…" not in "\n".join(lines)
    assert lines[0].split("\t") == [h for _, h in listing.COLUMNS]
    by_id = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(by_id) == {r.id for r in runs}
    long = by_id[runs[0].id]
    assert long[1] == LONG_NAME and long[2] == "completed"
    assert long[6] == "acc 0.9375" and long[9] == "cuda:0 (NVIDIA H200 141 GB)"
    assert by_id[runs[1].id][6] == "mAP 0.5000"


def ls_on_terminal(runs_dir: Path, columns: int) -> list[str]:
    """`tuneterm ls` with its output on a pseudo-terminal `columns` wide; lines without
    colour codes."""
    import fcntl
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if k != "TUNETERM_RUNS"}
    env.update(COLUMNS=str(columns), LINES="40", TERM="xterm-256color")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuneterm", "--runs-dir", str(runs_dir), "ls"],
        stdout=slave, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return [line.rstrip() for line in text.replace("\r", "").splitlines() if line.strip()]


@pytest.mark.parametrize("columns", [80, 60])
def test_ls_at_a_terminal_width_drops_columns_never_the_id_or_status(
    runs_dir: Path, columns: int
) -> None:
    runs = ls_store(runs_dir)
    lines = ls_on_terminal(runs_dir, columns)
    assert all(len(line) <= columns for line in lines), lines
    assert lines[0].split()[0] == "ID" and "STATUS" in lines[0]
    assert "DEVICE" not in lines[0]  # the first column to go
    tails = listing.short_ids([r.id for r in runs])
    for run in runs:  # the id whole, or its unique tail (what `show` accepts); the status whole
        row = next(line for line in lines if line.split()[0] in (run.id, tails[run.id]))
        assert "completed" in row
    if columns == 80:
        assert "BEST" in lines[0] and "acc 0.9375" in "\n".join(lines)  # kept, and whole
        assert "EPOCH" in lines[0]  # where a running run is: room made by the ids' tails


def test_ls_at_a_wide_terminal_shows_every_column(runs_dir: Path) -> None:
    runs = ls_store(runs_dir)
    lines = ls_on_terminal(runs_dir, 250)
    assert lines[0].split() == ["ID", "NAME", "STATUS", "MODEL", "DATA", "EPOCH", "BEST",
                                "LOSS", "ELAPSED", "DEVICE"]  # fmt: skip
    assert any(LONG_NAME in line and "cuda:0 (NVIDIA H200 141 GB)" in line for line in lines)
    assert "…" not in "\n".join(lines) and len(lines) == 1 + len(runs)


def test_layout_drops_low_priority_columns_first() -> None:
    row = {"id": "x" * 24, "name": "n" * 30, "status": "completed", "model": "resnet18",
           "data": "digits", "epoch": "4/4", "best": "acc 0.9375", "loss": "0.1230",
           "elapsed": "1:30", "device": "cuda:0 (NVIDIA H200)"}  # fmt: skip
    wide = listing.layout([row], 1000)
    assert wide.keys == tuple(k for k, _ in listing.COLUMNS)
    at_80 = listing.layout([row], 80)
    assert set(at_80.keys) >= {"id", "status", "name"} and "device" not in at_80.keys
    assert sum(at_80.widths.values()) + 2 * (len(at_80.keys) - 1) <= 80
    assert at_80.widths["id"] == 24 and at_80.widths["status"] == len("completed")
    tiny = listing.layout([row], 20)  # not even the id and status fit: they stay whole
    assert tiny.keys == ("id", "status") and tiny.widths["id"] == 24


# -- one view of a run -------------------------------------------------------------------------
def test_a_dead_run_reads_the_same_in_report_and_the_tui_list(runs_dir: Path) -> None:
    from tuneterm.runs import report
    from tuneterm.tui import rows

    store = RunStore(runs_dir)
    info = store.create(new_run(loads(TINY), "killed"))
    m = load_meta(info.path / "meta.json")
    m.status, m.pid, m.started, m.ended = "running", 0, time.time() - 600, None
    m.step, m.total_steps = 10, 40  # killed a quarter through: no end time written
    save_meta(info.path / "meta.json", m)
    dead = store.info(info.id)
    assert not dead.alive
    later = time.time() + 3600
    spent = view.elapsed(dead, later)
    assert spent is not None and spent < 700  # stopped counting at its last update
    assert report.summary(dead)["elapsed"] == pytest.approx(spent, abs=2)
    assert rows.elapsed(dead, later) == spent
    assert report.summary(dead)["eta"] is None and rows.eta(dead, later) is None
    assert report.summary(dead)["progress"] == 0.25 == rows.fraction_done(dead)
    assert json.dumps(report.summary(dead))  # the JSON shape stays serialisable


@pytest.mark.parametrize("size", [(80, 24), (110, 32)])
def test_tui_run_list_shows_the_best_value_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    """The Best column sits next to Status, so its value is on screen at 80 and 110 columns."""
    import asyncio

    from helpers.fake_store import make_run, new_app, screen_text, until

    from tuneterm.tui.widgets.runtable import RunTable

    store = RunStore(tmp_path / "runs")
    for i, status in enumerate(("completed", "failed", "stopped")):  # names as long as shown
        make_run(store, f"lr-sweep-resnet18-digits-{i:04d}", status, seed=1 + i)
    cells = [view.best(r) for r in store.list()]
    assert all(c is not None for c in cells)

    async def check() -> None:
        app = new_app(store)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.screen.query(RunTable) and
                        app.screen.query_one(RunTable).row_count == 3)  # fmt: skip
            text = screen_text(app)
            for best in cells:
                assert best is not None and best.cell in text, (best.cell, text)

    asyncio.run(check())


def test_following_ended_runs_returns_each_status_once_with_its_metrics(tmp_path: Path) -> None:
    """`tuneterm run` without --detach follows with runs/watch.py: a bar per run, showing the
    metrics its spec plots, its errors printed above, and each run's final status."""
    store = RunStore(tmp_path / "runs")
    done, broke = make_run(store, "done"), make_run(store, "broke", status="failed")
    con = Console(file=io.StringIO(), width=200)
    # A run named twice is followed once (and the loop still ends).
    final = watch(store, [done.id, broke.id, done.id], con)
    assert final == {done.id: "completed", broke.id: "failed"}
    lines = con.file.getvalue().splitlines()
    assert "broke: CUDA out of memory" in lines  # the failed run's error event
    bars = [line.split() for line in lines if line.startswith(("done ", "broke "))]
    assert [bar[0] for bar in bars] == ["done", "broke"], lines
    for bar, status in zip(bars, ("completed", "failed"), strict=True):
        assert status in bar and "val_acc" in bar and "loss" in bar, bar


def test_following_at_80_columns_keeps_the_name_and_figures_whole(tmp_path: Path) -> None:
    """At 80 columns a run's name has a line of its own, whole, and its bar gives way to the
    figures; a run whose best metric is plotted with the loss (a script's val_err) shows it."""
    store = RunStore(tmp_path / "runs")
    name = "source: digits 8px fine-tune from imagenet"
    lower = {"name": "val_loss", "label": "val loss", "higher": False, "pane": "loss"}
    run = make_run(store, name, metrics={"task": "classify", "best": "val_loss",
                                         "higher": False, "val": [lower]})  # fmt: skip
    con = Console(file=io.StringIO(), width=80)
    watch(store, [run.id], con)
    lines = con.file.getvalue().splitlines()
    assert name in lines, lines
    bar = lines[lines.index(name) + 1]
    assert "…" not in bar and len(bar) <= 80, bar
    assert re.search(r"60/60 +completed +epoch 3/3 +loss \d\.\d{4} +val_loss 0\.3333", bar), bar


def test_show_prints_values_as_a_person_reads_them(cli: Cli, runs_dir: Path) -> None:
    """`show`: the best as `label value (epoch, step)`, figures rounded, tags, notes and
    versions shown, and never a Python dict."""
    store = RunStore(runs_dir)
    info = make_run(store, "shown", versions={"torch": "2.14.1", "python": "3.11.7"})
    cli("label", info.id, "--tag", "demo", "--notes", "lr too high")
    text = cli("show", info.id).stdout
    assert "{" not in text and "'" not in text, text
    best = re.search(r"best +(.+)", text)
    assert best is not None and re.fullmatch(r"\S.* \d\.\d{4} \(epoch \d+(, step \d+)?\)", best[1])
    assert re.search(r"tags +#demo", text) and re.search(r"notes +lr too high", text)
    assert re.search(r"versions +python 3\.11\.7 +torch 2\.14\.1", text)  # sorted by name
    assert not re.search(r"\d\.\d{6}", text), text  # no full-precision floats
    long = "lr 0.01 was too high: the loss jumps at epoch 2; next try 3e-3 with a warmup of 200"
    cli("label", info.id, "--notes", long)
    lines = cli("show", info.id).stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  notes"))
    assert all(len(line) <= 80 for line in lines), lines  # at 80 columns: wrapped under itself
    assert lines[at + 1].startswith(" " * 15) and " ".join(lines[at : at + 2]).split() == [
        "notes", *long.split()]  # fmt: skip


def test_compare_shows_each_best_figure_the_name_now_and_a_readable_rate(
    cli: Cli, runs_dir: Path
) -> None:
    """`compare`: every figure of each run's best epoch (best.val_top5), the run's name as it
    is now in the config diff and the headers, and throughput to a tenth (not 28.5000)."""
    store = RunStore(runs_dir)
    a = make_run(store, "a", best={"metric": "val_acc", "value": 0.9, "epoch": 3, "step": 60,
                                   "val_acc": 0.9, "val_top5": 0.9694})  # fmt: skip
    b = make_run(store, "b", lr=0.01)
    cli("label", a.id, "--name", "renamed")
    data = cli.json("compare", a.id, b.id)
    assert data["metrics"]["best.val_top5"][a.id] == 0.9694
    assert data["config_diff"]["run.name"] == {a.id: "renamed", b.id: "b"}
    text = cli("compare", a.id, b.id).stdout
    assert re.search(r"best\.val_top5 +0\.9694 +-", text), text
    assert re.search(r"throughput +28\.5 +28\.5\b", text) and "28.5000" not in text, text
    # each column headed by the run's name and its id's tail, not a whole id cut at 80 columns
    tails = listing.short_ids([a.id, b.id])
    assert a.id not in text and "…" not in text, text
    heads = [
        line.split() for line in text.splitlines() if line.split()[:1] in (["metric"], ["key"])
    ]
    assert heads == [["metric", tails[a.id], tails[b.id]], ["key", tails[a.id], tails[b.id]]]
    assert "renamed" in text[: text.index("best.val_acc")], text
