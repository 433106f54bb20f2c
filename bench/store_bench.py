"""Benchmark of the run store and its TinyDB event queue, against the goals of issue 2.

    python bench/store_bench.py            # full run (1,000,000-event queue; ~2 minutes)
    python bench/store_bench.py --quick    # smaller run (100,000-event queue; ~30 s)
    python bench/store_bench.py --record bench/RESULTS.md   # also write the Store section

Every figure is measured in this run, on this machine; the table shows it next to its goal and
the ratio between them. Nothing is asserted: these machines are noisy. Stock TinyDB `insert()`
is measured on the same machine as a baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tinydb import TinyDB

from tuneterm.config import RunConfig
from tuneterm.runs.lifecycle import new_run
from tuneterm.store.events import (
    FLUSH_INTERVAL,
    SEGMENT_EVENTS,
    Cursor,
    EventReader,
    EventWriter,
    list_segments,
    read_all,
)
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunStore

# A writer in its own process: emits `rate` events/s, each stamped with its emit time `t0`,
# for `duration` seconds (0: until killed), then closes. Prints "ready" once writing.
WRITER_CHILD = r"""
import sys, time
from pathlib import Path
from tuneterm.store.events import EventWriter
events_dir, rate, duration = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
w = EventWriter(events_dir)
print("ready", flush=True)
start = time.time()
n = 0
while True:
    now = time.time()
    if duration and now - start >= duration:
        break
    due = int((now - start) * rate)
    while n < due:
        w.emit("train", t0=time.time(), step=n, loss=1.0 / (n + 1), lr=1e-3)
        n += 1
    time.sleep(0.0005)
w.close()
print("done", n, flush=True)
"""


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    goal: float | None = None  # None: shown for information
    higher_is_better: bool = False
    note: str = ""

    def ratio(self) -> str:
        if self.goal is None or self.value <= 0:
            return ""
        if self.higher_is_better:
            return f"{_num(self.value / self.goal)}x goal"
        return f"{_num(self.value / self.goal)} of max"

    def within(self) -> str:
        if self.goal is None:
            return ""
        ok = self.value >= self.goal if self.higher_is_better else self.value <= self.goal
        return "yes" if ok else "NO"

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {_num(self.goal)} {self.unit}"


def _num(x: float) -> str:
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.1:
        return f"{x:.2f}"
    return f"{x:.2g}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


# -- 1. sustained append throughput ---------------------------------------------------------------
def bench_throughput(root: Path, seconds: float) -> tuple[float, int, float]:
    """Emit as fast as possible for `seconds` through the real writer (background flusher,
    fsync on); the clock stops when `close()` has made every event durable.
    Returns (events/s, events, elapsed seconds)."""
    w = EventWriter(root / "throughput")
    t = time.perf_counter()
    end = t + seconds
    i = 0
    while time.perf_counter() < end:
        for k in range(i, i + 100):
            w.emit("train", step=k, loss=1.0 / (k + 1), lr=1e-3, epoch=k // 1000)
        i += 100
    w.close()
    elapsed = time.perf_counter() - t
    assert len(read_all(root / "throughput")) == i
    return i / elapsed, i, elapsed


def bench_tinydb(root: Path, n: int) -> float:
    """Stock TinyDB: one `insert()` per event into one JSON file (from empty to `n` docs)."""
    db = TinyDB(root / "stock.json")
    t = time.perf_counter()
    for i in range(n):
        db.insert({"seq": i, "t": time.time(), "kind": "train", "step": i, "loss": 1.0 / (i + 1)})
    elapsed = time.perf_counter() - t
    db.close()
    return n / elapsed


# -- 2. cost per event as the queue grows ---------------------------------------------------------
def bench_growth(
    root: Path, total: int, window: int, batch: int
) -> tuple[tuple[float, float], tuple[float, float], Path]:
    """One queue grown to `total` events, `batch` events per flush (fsync on). Returns the cost
    per event (µs, wall and CPU) in a window starting at 1,000 events and in the last window
    before `total`: the median over the window's chunks of one segment's worth of events (each
    chunk mixes the same segment fill levels), so one slow fsync does not decide the ratio."""
    events_dir = root / "growth"
    w = EventWriter(events_dir, background=False)
    early_start, late_start = 1000, total - window
    chunk = SEGMENT_EVENTS
    assert early_start % batch == 0 and late_start % batch == 0 and chunk % batch == 0
    chunks: dict[str, list[tuple[float, float]]] = {"early": [], "late": []}
    acc_wall = acc_cpu = 0.0
    i = 0
    next_report = time.time() + 10
    while i < total:
        t, c = time.perf_counter(), time.process_time()
        for k in range(i, i + batch):
            w.emit("train", step=k, loss=1.0 / (k + 1), lr=1e-3, epoch=k // 1000)
        w.flush()
        acc_wall += time.perf_counter() - t
        acc_cpu += time.process_time() - c
        i += batch
        if (i - early_start) % chunk == 0:
            if early_start < i <= early_start + window:
                chunks["early"].append((acc_wall, acc_cpu))
            elif late_start < i:
                chunks["late"].append((acc_wall, acc_cpu))
            acc_wall = acc_cpu = 0.0
        if time.time() > next_report:
            _say(f"growing queue: {i:,} / {total:,} events")
            next_report = time.time() + 10
    w.close()

    def per_event(name: str) -> tuple[float, float]:
        walls, cpus = zip(*chunks[name], strict=True)
        return statistics.median(walls) / chunk * 1e6, statistics.median(cpus) / chunk * 1e6

    return per_event("early"), per_event("late"), events_dir


# -- 3. a poll that finds nothing new -------------------------------------------------------------
def bench_empty_poll(events_dir: Path, reps: int) -> tuple[float, float, float]:
    """A reader resumed from a cursor on the last segment catches up, then polls `reps` times."""
    last = list_segments(events_dir)[-1]
    reader = EventReader(events_dir, Cursor(segment=last))
    reader.poll()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        got = reader.poll()
        times.append(time.perf_counter() - t)
        assert not got
    return statistics.median(times) * 1e3, _pct(times, 0.99) * 1e3, max(times) * 1e3


# -- 4. a poll over 1,000 runs --------------------------------------------------------------------
def build_runs(root: Path, n_runs: int, events_each: int) -> RunStore:
    store = RunStore(root / "runs")
    cfg = RunConfig()
    me = os.getpid()
    for r in range(n_runs):
        info = store.create(new_run(cfg))
        with EventWriter(store.events_dir(info.id), background=False) as w:
            for k in range(events_each):
                w.emit("train", step=k, loss=1.0 / (k + 1))
        meta = load_meta(store.meta_path(info.id))
        if r % 100 == 0:  # a few "running": their liveness is checked through psutil
            meta.status, meta.pid, meta.pid_start = "running", me, 1.0
        else:
            meta.status, meta.final = "completed", {"val_acc": 0.9}
        save_meta(store.meta_path(info.id), meta)
    return store


def bench_many_runs(store: RunStore, passes: int) -> list[float]:
    """One pass: list the runs, poll every run's reader (cursor at end), read every info()."""
    readers = {rid: store.events(rid) for rid in store.ids()}
    for reader in readers.values():
        reader.poll()  # the cursor is now at the end
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        new = 0
        for rid in store.ids():
            new += len(readers[rid].poll())
            store.info(rid)
        times.append(time.perf_counter() - t)
        assert new == 0
    return times


# -- 5. emit-to-visible latency across processes --------------------------------------------------
def _spawn_writer(events_dir: Path, rate: float, duration: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_CHILD, str(events_dir), str(rate), str(duration)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"writer child did not start: {line!r}")
    return proc


def bench_latency(root: Path, rate: float, duration: float) -> tuple[list[float], int]:
    """A writer process emits at `rate`/s; this process polls every 2 ms and records, for each
    event, when it first became visible minus when it was emitted. Returns (ms list, count)."""
    events_dir = root / f"latency-{int(rate)}"
    proc = _spawn_writer(events_dir, rate, duration)
    reader = EventReader(events_dir)
    lat: list[float] = []
    seen = 0
    while True:
        done = proc.poll() is not None
        for ev in reader.poll():
            lat.append((time.time() - ev["t0"]) * 1e3)
            assert ev["seq"] == seen
            seen += 1
        if done:
            break
        time.sleep(0.002)
    for ev in reader.poll():  # written by close() after the child's last check
        lat.append((time.time() - ev["t0"]) * 1e3)
        seen += 1
    return lat, seen


# -- 6. kill -9 of the writer ---------------------------------------------------------------------
@dataclass
class KillTrial:
    lost_ms: float
    lost_events: int
    kept: int
    readable: bool
    resumed: bool


def bench_kill(root: Path, trial: int, rate: float) -> KillTrial:
    events_dir = root / f"kill-{trial}"
    proc = _spawn_writer(events_dir, rate, 0)
    time.sleep(1.0 + random.random())  # land anywhere in the flush cycle
    os.kill(proc.pid, signal.SIGKILL)
    t_kill = time.time()
    proc.wait()
    try:
        events = read_all(events_dir)
        readable = [e["seq"] for e in events] == list(range(len(events)))
    except Exception:
        return KillTrial(float("nan"), -1, 0, False, False)
    last_t0 = events[-1]["t0"] if events else t_kill
    lost_ms = (t_kill - last_t0) * 1e3
    w = EventWriter(events_dir, background=False)
    resumed = w.seq == len(events)
    w.emit("status", status="resumed")
    w.close()
    after = read_all(events_dir)
    resumed = resumed and [e["seq"] for e in after] == list(range(len(events) + 1))
    return KillTrial(lost_ms, round(lost_ms / 1e3 * rate), len(events), readable, resumed)


# -- report ---------------------------------------------------------------------------------------
def machine() -> str:
    return (
        f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def table(rows: list[Row]) -> str:
    head = ("metric", "measured", "goal", "ratio", "within goal", "note")
    body = [
        (r.metric, f"{_num(r.value)} {r.unit}", r.goal_text(), r.ratio(), r.within(), r.note)
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(out)


def markdown(rows: list[Row], command: str, when: str, extra: list[str]) -> str:
    lines = [
        "## Store (bench/store_bench.py)",
        "",
        f"- date: {when}",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        "",
        "| metric | measured | goal | ratio | within goal | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.metric} | {_num(r.value)} {r.unit} | {r.goal_text()} | {r.ratio()} "
            f"| {r.within()} | {r.note} |"
        )
    lines += ["", *extra, ""]
    return "\n".join(lines)


def record(path: Path, section: str) -> None:
    """Replace this script's section of RESULTS.md (up to the next `## `), or append it."""
    heading = "## Store (bench/store_bench.py)"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        end = len(text) if nxt < 0 else nxt + 1
        text = text[:start] + section + ("\n" if nxt >= 0 else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def run(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    quick = args.quick
    thru_s = 2.0 if quick else 5.0
    n_stock = 150 if quick else 500
    total = 100_000 if quick else 1_000_000
    rows: list[Row] = []
    extra: list[str] = []
    timed: Callable[[str], None] = _say
    with tempfile.TemporaryDirectory(prefix="tuneterm-bench-") as tmp:
        root = Path(tmp)

        timed(f"throughput: {thru_s:.0f} s of events through EventWriter")
        rate, n_thru, secs = bench_throughput(root, thru_s)
        timed(f"stock TinyDB: {n_stock} single inserts")
        stock = bench_tinydb(root, n_stock)
        rows.append(
            Row(
                "append throughput (EventWriter, bg flusher, fsync)",
                rate,
                "ev/s",
                20_000,
                True,
                f"{n_thru:,} events in {secs:.2f} s, clock stopped when all durable",
            )
        )
        rows.append(
            Row(
                "  baseline: stock TinyDB insert()",
                stock,
                "ev/s",
                None,
                note=f"0..{n_stock} docs in one file; EventWriter = {rate / stock:,.0f}x stock",
            )
        )

        window = 5 * SEGMENT_EVENTS
        timed(f"growth: one queue to {total:,} events, 1,000 per flush")
        t = time.perf_counter()
        early, late, growth_dir = bench_growth(root, total, window, 1000)
        grow_s = time.perf_counter() - t
        rows.append(
            Row(
                "cost/event near 1k",
                early[0],
                "µs",
                None,
                note=f"events 1,000-11,000; CPU {early[1]:.1f} µs",
            )
        )
        rows.append(
            Row(
                f"cost/event near {total:,}",
                late[0],
                "µs",
                None,
                note=f"last {window:,} events; CPU {late[1]:.1f} µs; "
                f"whole growth {total / grow_s:,.0f} ev/s",
            )
        )
        rows.append(
            Row(
                f"cost ratio {total // 1000:,}k / 1k (wall, fsync on)",
                late[0] / early[0],
                "",
                1.5,
                note=f"CPU-time ratio {late[1] / early[1]:.2f}; "
                f"{len(list_segments(growth_dir))} segments of {SEGMENT_EVENTS:,}",
            )
        )

        timed("empty polls")
        p50, p99, pmax = bench_empty_poll(growth_dir, 2000)
        rows.append(
            Row(
                "poll finding nothing new (p50)",
                p50,
                "ms",
                5,
                note=f"p99 {p99:.3f} ms, max {pmax:.3f} ms; 2,000 polls",
            )
        )

        n_runs = 1000
        timed(f"building {n_runs} run folders")
        t = time.perf_counter()
        store = build_runs(root, n_runs, 5)
        build_s = time.perf_counter() - t
        times = bench_many_runs(store, 5)
        rows.append(
            Row(
                f"poll over {n_runs:,} runs (first pass)",
                times[0],
                "s",
                0.5,
                note=f"events poll + info() per run; median of 5 {statistics.median(times):.3f} s",
            )
        )
        extra.append(
            f"- {n_runs:,} runs built with `RunStore.create` + 5 events each in {build_s:.1f} s."
        )

        for rate_ev, dur in ((200.0, 3.0 if quick else 5.0), (20_000.0, 2.0 if quick else 4.0)):
            timed(f"latency: writer process at {rate_ev:,.0f} ev/s for {dur} s")
            lat, seen = bench_latency(root, rate_ev, dur)
            rows.append(
                Row(
                    f"emit-to-visible p99 @ {rate_ev:,.0f} ev/s",
                    _pct(lat, 0.99),
                    "ms",
                    250,
                    note=f"p50 {_pct(lat, 0.5):.0f}, max {max(lat):.0f} ms; {seen:,} events, "
                    "reader in another process polling every 2 ms",
                )
            )

        trials = 3 if quick else 6
        kills = []
        for k in range(trials):
            timed(f"kill -9 trial {k + 1}/{trials}")
            kills.append(bench_kill(root, k, 2000.0))
        lost = [k.lost_ms for k in kills]
        readable = sum(k.readable for k in kills)
        resumed = sum(k.resumed for k in kills)
        rows.append(
            Row(
                "kill -9: events lost (worst trial)",
                max(lost),
                "ms",
                500,
                note=f"{trials} kills at 2,000 ev/s; lost ms per trial "
                + ", ".join(f"{x:.0f}" for x in lost)
                + f"; readable after {readable}/{trials}, new writer continues seq "
                f"{resumed}/{trials}",
            )
        )
        extra.append(
            f"- Flush interval {FLUSH_INTERVAL * 1000:.0f} ms, segments of {SEGMENT_EVENTS:,} "
            "events. Ratio column: measured/goal (throughput: higher is better; the others: "
            "fraction of the allowed maximum)."
        )
    return rows, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller run (~30 s)")
    parser.add_argument("--record", type=Path, help="write the Store section of this file")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args(argv)
    when = datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
    command = "python bench/store_bench.py" + (" --quick" if args.quick else "")
    print(f"tuneterm store benchmark  {when}")
    print(f"machine: {machine()}")
    print(f"command: {command}\n")
    rows, extra = run(args)
    print(table(rows))
    for line in extra:
        print(line)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
    if args.record:
        record(args.record, markdown(rows, command, when, extra))
        print(f"\nrecorded in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
