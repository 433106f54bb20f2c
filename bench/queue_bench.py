"""Run-queue costs over a store of N queued + N finished runs, as ratios to one `RunStore.list()`
(the scan every reader already pays). The scheduler repeats its pass once per second.

    python bench/queue_bench.py [--runs 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuneterm.config import loads
from tuneterm.runs import runqueue, scheduler
from tuneterm.runs.lifecycle import new_run
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunStore

CFG = '[model]\nname = "resnet18"\nweights = "none"\n[train]\nthreads = 1\n'


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300, help="queued runs (and as many finished)")
    n = ap.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs")
        cfg = loads(CFG)
        t = time.perf_counter()
        for _ in range(n):
            info = store.create(new_run(cfg))
            meta = load_meta(info.path / "meta.json")
            meta.status = "completed"
            save_meta(info.path / "meta.json", meta)
        ids = [runqueue.enqueue(store, cfg).id for _ in range(n)]
        built = time.perf_counter() - t
        base = timed(store.list)
        # A pass that finds no free slot: the scheduler's steady state while runs train.
        full = {"cpu": 1}
        holder = store.info(ids[0])
        meta = load_meta(holder.path / "meta.json")
        meta.status, meta.gpus, meta.dequeued = "created", "cpu", time.time()
        save_meta(holder.path / "meta.json", meta)
        rows = [
            ("RunStore.list() (baseline)", base),
            ("queue ls (runqueue.queued)", timed(lambda: runqueue.queued(store))),
            ("scheduler pass, no free slot", timed(lambda: scheduler.take_next(store, full))),
            ("enqueue one run", timed(lambda: runqueue.enqueue(store, cfg), repeat=3)),
            ("move last run to position 1", timed(lambda: runqueue.move(store, ids[-1], 1), 3)),
            ("cancel one run", timed(lambda: runqueue.cancel(store, ids.pop()), repeat=3)),
        ]
    print(f"{n} queued + {n} finished runs (built in {built:.1f} s); median of 3-5 timings")
    print(f"{'operation':36} {'time':>10} {'x list()':>9}")
    for name, sec in rows:
        print(f"{name:36} {sec * 1000:8.1f} ms {sec / base:9.2f}")


if __name__ == "__main__":
    main()
