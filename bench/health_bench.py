"""The health watcher's cost over a store of many runs (issue 16: one pass over 1,000 runs at
most 100 ms here).

    python bench/health_bench.py [--runs 1000] [--active 20] [--events 200]

Builds a store through the store API: `--runs` runs with `--events` train/val/sys events each,
of which `--active` read `running` (their process is this one, so they are alive). Then it
times, in the same process:

- baseline: `RunStore.list()`, what `tuneterm ls` reads (every meta.json, liveness);
- the watcher's first pass (`Watcher.check()` reads every run's events once);
- a steady pass (nothing new: ended runs cost one stat, active ones poll their cursor);
- a steady pass after each active run appended 10 events.

Each figure is the median of 5 (the first pass: of 3 fresh watchers), and is printed with its
ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tuneterm.config import loads
from tuneterm.health.watch import Watcher
from tuneterm.proc import ProcessIdentity
from tuneterm.runs.lifecycle import new_run
from tuneterm.store import EventWriter, RunStore
from tuneterm.store.meta import load_meta, save_meta


def build(root: Path, runs: int, active: int, events: int) -> tuple[RunStore, list[str]]:
    store = RunStore(root)
    cfg = loads('[model]\nweights = "none"\n[data]\ndataset = "digits"\n')
    me = ProcessIdentity.current("x")
    live = []
    for i in range(runs):
        info = store.create(new_run(cfg))
        m = load_meta(info.path / "meta.json")
        now = time.time()
        if i < active:
            m.status, m.pid, m.started = "running", me.pid, now - 60
            m.pid_start = me.start_time
            live.append(info.id)
        else:
            m.status, m.started, m.ended = "completed", now - 600, now - 300
        save_meta(info.path / "meta.json", m)
        with EventWriter(store.events_dir(info.id), fsync=False, background=False) as w:
            w.emit("status", status="running")
            for s in range(events):
                w.emit(
                    "train", step=s, epoch=1, loss=1.0 / (s + 1), examples_s=100.0, data_wait=0.01
                )
                if s % 20 == 19:
                    w.emit("val", epoch=s // 20, step=s, val_loss=0.5, val_acc=0.9)
                    w.emit("sys", cpu=50.0, rss=1e9)
            if i >= active:
                w.emit("status", status="completed")
    return store, live


def timed(fn: object, n: int = 5) -> float:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--active", type=int, default=20)
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store, live = build(Path(tmp), args.runs, args.active, args.events)
        print(
            f"built {args.runs} runs ({args.active} active, ~{args.events} events each) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        base = timed(store.list)
        firsts = []
        for _ in range(3):
            w = Watcher(store)
            t1 = time.perf_counter()
            reports = w.check()
            firsts.append(time.perf_counter() - t1)
        first = statistics.median(firsts)
        steady = timed(w.check)
        writers = {
            rid: EventWriter(store.events_dir(rid), fsync=False, background=False) for rid in live
        }

        def grow_and_check() -> None:
            for wr in writers.values():
                for s in range(10):
                    wr.emit("train", step=s, epoch=2, loss=0.1, examples_s=100.0, data_wait=0.01)
                wr.flush()
            w.check()

        grown = timed(grow_and_check)
        for wr in writers.values():
            wr.close()
        alerts = sum(len(r.alerts) for r in reports)
        rows = [
            ("RunStore.list() (baseline)", base),
            ("watcher, first pass", first),
            ("watcher, steady pass", steady),
            ("watcher, pass after 10 new events per active run (incl. writing them)", grown),
        ]
        print(f"{'figure':<72} {'ms':>8} {'x list()':>9}")
        for name, sec in rows:
            print(f"{name:<72} {sec * 1000:>8.1f} {sec / base:>9.2f}")
        print(
            f"alerts found: {alerts} (a healthy synthetic store: 0 expected); {os.cpu_count()} cpus"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
