"""The queue scheduler: `python -m tuneterm.runs.scheduler RUNS_DIR` (start it with `tuneterm queue
start`). It starts queued runs in order when their GPUs have a free slot.

One scheduler per runs folder (an flock held for life). It keeps no state of its own: each
pass reads the store, counts the slots live runs hold, and starts the head of the queue if it
fits (strict order: a run that needs more GPUs than are free waits, and so do those behind it).
Killed and started again, it carries on where the store says the queue is.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from tuneterm.config import ConfigError, run_config
from tuneterm.proc import ProcessIdentity
from tuneterm.runs import launcher, runqueue
from tuneterm.store.files import FILE_MODE, atomic_write_json
from tuneterm.store.meta import UnreadableRun, load_meta, save_meta
from tuneterm.store.runs import RunStore, number_queue

POLL = 1.0  # seconds between passes over the store


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)


def take_next(store: RunStore, slots: dict[str, int]) -> tuple[str, list[str], bool] | None:
    """Under the queue lock: the head of the queue if its GPUs are free, marked as taken
    (status created, the assignment recorded). Returns (run id, devices, resume)."""
    with runqueue.queue_lock(store):
        runs = store.list()
        waiting = number_queue(runs)
        if not waiting:
            return None
        head = waiting[0]
        path = store.meta_path(head.id)
        try:
            need = runqueue.gpus_needed(run_config(store, head.id))
        except (ConfigError, OSError) as exc:
            meta = load_meta(path)
            meta.status, meta.error, meta.ended = "failed", f"config.toml: {exc}", time.time()
            save_meta(path, meta)
            log(f"{head.id}: config no longer validates; marked failed")
            return None
        if runqueue.CPU not in slots and need > len(slots):
            meta = load_meta(path)
            meta.status, meta.ended = "failed", time.time()
            meta.error = f"train.gpus = {need}: the queue has only {len(slots)} GPU(s)"
            save_meta(path, meta)
            log(f"{head.id}: {meta.error}; marked failed")
            return None
        devices = runqueue.allocate(runqueue.free_slots(runs, slots), need)
        if devices is None:
            return None
        meta = load_meta(path)
        resume = bool(meta.queued_from)
        meta.status, meta.queued_from, meta.queue_pos = "created", "", 0
        meta.dequeued, meta.gpus = time.time(), ",".join(devices)
        meta.pid, meta.pid_start = 0, 0.0  # a resumed run's old engine is gone
        save_meta(path, meta)
        return head.id, devices, resume


def launch(store: RunStore, run_id: str, devices: list[str], resume: bool) -> None:
    env = {} if devices == [runqueue.CPU] else {"CUDA_VISIBLE_DEVICES": ",".join(devices)}
    try:
        launcher.start_created(store, run_id, resume=resume, env=env)
        log(f"{run_id}: started on {','.join(devices)}{' (resume)' if resume else ''}")
    except launcher.LaunchError as exc:
        log(f"{run_id}: did not start: {str(exc).splitlines()[0]}")
    except (UnreadableRun, OSError) as exc:
        log(f"{run_id}: did not start: {exc}")


def serve(store: RunStore, stop: threading.Event, gpus: list[str]) -> None:
    while not stop.is_set():
        try:
            settings = runqueue.load_settings(store)
        except ConfigError as exc:
            log(f"settings.json: {exc}; keeping the defaults")
            settings = runqueue.QueueSettings()
        slots = runqueue.capacity(settings, settings.gpus if settings.gpus is not None else gpus)
        while not stop.is_set() and (taken := take_next(store, slots)) is not None:
            launch(store, *taken)
        stop.wait(POLL)


def _settings_gpus(store: RunStore) -> list[str] | None:
    try:
        return runqueue.load_settings(store).gpus
    except ConfigError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuneterm.runs.scheduler")
    ap.add_argument("runs_dir")
    args = ap.parse_args(argv)
    store = RunStore(Path(args.runs_dir))
    qdir = runqueue.queue_dir(store)
    lock_fd = os.open(qdir / "scheduler.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another scheduler runs for {store.root}; exiting")
        return 3
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    me = ProcessIdentity.current(str(store.root), runqueue.SCHEDULER_MARKER)
    # GPUs from settings.json, else detected, which may import torch (seconds): until then
    # scheduler.json says gpus = null, and `queue start` need not wait for it.
    gpus = _settings_gpus(store)
    state = runqueue.SchedulerState(me.pid, me.start_time, str(store.root), time.time(), gpus)
    atomic_write_json(qdir / "scheduler.json", asdict(state))
    if gpus is None:
        gpus = state.gpus = runqueue.detect_gpus()
        atomic_write_json(qdir / "scheduler.json", asdict(state))
    log(f"scheduler {me.pid} for {store.root}: GPUs {','.join(gpus) or 'none (CPU slots)'}")
    try:
        serve(store, stop, gpus)
    finally:
        (qdir / "scheduler.json").unlink(missing_ok=True)
        log("scheduler stopped; queued runs wait for the next `tuneterm queue start`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
