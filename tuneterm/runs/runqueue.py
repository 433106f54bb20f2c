"""The run queue: runs that wait for a free GPU slot, kept in the run store.

A queued run is a normal run folder (config.toml as launched, validated up front) whose
meta.json says `queued` with a `queue_pos`; it has no engine yet. The scheduler
(tuneterm/scheduler.py) starts queued runs in order when slots are free. Everything lives in the
store, so the queue survives the TUI closing and the machine restarting: `tuneterm queue start`
picks it up again.

Files under RUNS/.queue/:
  queue.lock       flock held for a moment by whoever changes a queued run's meta.json (enqueue,
                   move, cancel, the scheduler taking a run off the queue): one writer at a time
  scheduler.lock   flock held for life by the one scheduler of this runs folder
  scheduler.json   the scheduler's identity (pid, start time, command line marker); its writer
                   is the scheduler
  settings.json    runs per GPU, CPU slots, GPU list; written by `tuneterm queue start`
  scheduler.log    the scheduler's output
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tuneterm.config import ConfigError, ConfigIssue, RunConfig
from tuneterm.proc import ProcessIdentity, is_alive, send_signal, spawn_detached, wait_gone
from tuneterm.runs import lifecycle
from tuneterm.store.files import FILE_MODE, atomic_write_json, make_dir, read_json
from tuneterm.store.meta import ACTIVE, QUEUED, load_meta, save_meta
from tuneterm.store.runs import RunInfo, RunStore, number_queue

QUEUE_DIR = ".queue"
SCHEDULER_MARKER = "tuneterm.runs.scheduler"
SCHEDULER_CMD = [sys.executable, "-m", SCHEDULER_MARKER]
CPU = "cpu"  # the slot key (and meta.gpus) of runs on a machine without GPUs
START_TIMEOUT = 30.0


def queue_dir(store: RunStore) -> Path:
    path = store.root / QUEUE_DIR
    make_dir(path)
    return path


@contextlib.contextmanager
def queue_lock(store: RunStore) -> Iterator[None]:
    """Serialise every writer of queued runs' meta.json (CLI, TUI, scheduler)."""
    fd = os.open(queue_dir(store) / "queue.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class SchedulerError(RuntimeError):
    """The scheduler process did not come up; the message says where its log is."""


class QueueStateError(RuntimeError):
    """The run is not in the state the queue action needs (e.g. cancelling a running run)."""


# -- the queue ---------------------------------------------------------------------------------
def queued(store: RunStore) -> list[RunInfo]:
    """Queued runs in the order they will start (queue_position set: 1 = next)."""
    return number_queue(store.list())


def _next_pos(store: RunStore) -> int:
    return max((r.meta.queue_pos for r in queued(store) if r.meta), default=0) + 1


def enqueue(store: RunStore, cfg: RunConfig, name: str = "") -> RunInfo:
    """Create the run folder as `queued` at the end of the queue. The caller validated cfg."""
    lifecycle.record_launch_folder(cfg)
    with queue_lock(store):
        info = store.create(lifecycle.new_run(cfg, name), status=QUEUED, queue_pos=_next_pos(store))
    return info


def requeue(store: RunStore, run_id: str) -> RunInfo:
    """Put a stopped, crashed or failed run back on the queue; it resumes when it starts."""
    info, _ = lifecycle.check_resumable(store, run_id)
    lifecycle.wait_shut_down(info)
    with queue_lock(store):
        meta = load_meta(store.meta_path(run_id))
        # A crashed run has no end time but its engine's last word: keep it, as this write
        # moves `updated` to now and the wait in the queue is no training.
        meta.ended = meta.ended or meta.updated
        meta.queued_from, meta.status = meta.status, QUEUED
        meta.queue_pos = _next_pos(store)
        save_meta(store.meta_path(run_id), meta)
    return store.info(run_id)


def _need_queued(store: RunStore, run_id: str) -> RunInfo:
    info = store.info(run_id)
    if info.status != QUEUED:
        raise QueueStateError(f"run {run_id} is {info.status}, not queued")
    return info


def cancel(store: RunStore, run_id: str) -> RunInfo:
    """A cancelled queued run keeps its folder with status `cancelled` (delete it with rm).
    A queued resume goes back to the status it had before it was queued."""
    with queue_lock(store):
        _need_queued(store, run_id)
        meta = load_meta(store.meta_path(run_id))
        if meta.queued_from:
            meta.status, meta.queued_from = meta.queued_from, ""
        else:
            meta.status, meta.ended = "cancelled", time.time()
        meta.queue_pos = 0
        save_meta(store.meta_path(run_id), meta)
    return store.info(run_id)


def move(store: RunStore, run_id: str, position: int) -> list[RunInfo]:
    """Put a queued run at `position` (1 = next to start; past the end = last)."""
    if position < 1:
        raise ConfigError([ConfigIssue("position", position, "must be >= 1 (1 = next to start)")])
    with queue_lock(store):
        _need_queued(store, run_id)
        order = [r.id for r in queued(store)]
        order.remove(run_id)
        order.insert(min(position, len(order) + 1) - 1, run_id)
        for pos, rid in enumerate(order, start=1):
            meta = load_meta(store.meta_path(rid))
            if meta.queue_pos != pos and meta.status == QUEUED:
                meta.queue_pos = pos
                save_meta(store.meta_path(rid), meta)
    return queued(store)


# -- slots -------------------------------------------------------------------------------------
@dataclass
class QueueSettings:
    per_gpu: int = 1  # runs at once on one GPU
    cpu_slots: int = 1  # runs at once on a machine without GPUs
    gpus: list[str] | None = None  # GPU ids to use; None = every GPU the machine shows

    def check(self) -> QueueSettings:
        issues = []
        if not 1 <= self.per_gpu <= 64:
            issues.append(ConfigIssue("per_gpu", self.per_gpu, "must be 1 to 64"))
        if not 1 <= self.cpu_slots <= 256:
            issues.append(ConfigIssue("cpu_slots", self.cpu_slots, "must be 1 to 256"))
        for g in self.gpus or []:
            if not g or not all(c.isalnum() or c in "-_:" for c in g):
                issues.append(ConfigIssue("gpus", g, "not a GPU index or UUID"))
        if issues:
            raise ConfigError(issues, "queue settings")
        return self


def load_settings(store: RunStore) -> QueueSettings:
    try:
        raw = read_json(queue_dir(store) / "settings.json")
    except FileNotFoundError:
        return QueueSettings()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [ConfigIssue("settings.json", "", f"unreadable: {exc}")], "queue settings"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError([ConfigIssue("settings.json", "", "not a JSON object")])
    known = {k: raw[k] for k in ("per_gpu", "cpu_slots", "gpus") if k in raw}
    try:
        return QueueSettings(**known).check()
    except TypeError as exc:
        raise ConfigError([ConfigIssue("settings.json", "", str(exc))]) from None


def save_settings(store: RunStore, settings: QueueSettings) -> None:
    atomic_write_json(queue_dir(store) / "settings.json", asdict(settings.check()))


def detect_gpus() -> list[str]:
    """GPU ids the scheduler may hand out: CUDA_VISIBLE_DEVICES if set, else NVML's count,
    else torch's; [] on a machine without GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip()]
    from tuneterm import monitor

    samples = monitor.gpu_samples()
    if samples:
        return [str(s.index) for s in samples]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def capacity(settings: QueueSettings, gpus: list[str]) -> dict[str, int]:
    """Slots per device: each GPU takes per_gpu runs; without GPUs, cpu_slots runs."""
    if not gpus:
        return {CPU: settings.cpu_slots}
    return dict.fromkeys(gpus, settings.per_gpu)


def free_slots(runs: list[RunInfo], slots: dict[str, int]) -> dict[str, int]:
    """Slots left after the live runs. Without GPUs every live run takes a CPU slot; with GPUs
    a run takes a slot on each GPU it was given, and a run started outside the queue (no
    recorded assignment) counts against the first GPU."""
    free = dict(slots)
    first = next(iter(slots))
    for r in runs:
        if r.status not in (*ACTIVE, "starting") or r.meta is None:
            continue
        devices = r.meta.gpus.split(",") if r.meta.gpus and CPU not in slots else [first]
        for dev in devices:
            if dev in free:
                free[dev] -= 1
    return free


def allocate(free: dict[str, int], need: int) -> list[str] | None:
    """`need` distinct devices with a free slot, the least loaded first; None if not now.
    On a CPU-only machine a run takes one slot whatever its train.gpus."""
    if CPU in free:
        return [CPU] if free[CPU] > 0 else None
    open_ = sorted((d for d in free if free[d] > 0), key=lambda d: -free[d])
    return sorted(open_[:need], key=list(free).index) if len(open_) >= need else None


def gpus_needed(cfg: RunConfig) -> int:
    # train.gpus comes with multi-GPU (torchrun) runs; a config without it needs one GPU.
    return max(1, int(getattr(cfg.train, "gpus", 1) or 1))


# -- the scheduler process ---------------------------------------------------------------------
@dataclass
class SchedulerState:
    pid: int
    start_time: float
    root: str
    started: float
    gpus: list[str] | None = None  # None while the scheduler is still detecting them

    @property
    def identity(self) -> ProcessIdentity:
        return ProcessIdentity(self.pid, self.start_time, self.root, SCHEDULER_MARKER)


def scheduler(store: RunStore) -> SchedulerState | None:
    """The running scheduler of this runs folder, or None (a stale file is ignored)."""
    try:
        raw = read_json(queue_dir(store) / "scheduler.json")
        state = SchedulerState(**raw)
    except (OSError, ValueError, TypeError):
        return None
    if state.root != str(store.root) or not is_alive(state.identity):
        return None
    return state


def start_scheduler(store: RunStore) -> tuple[SchedulerState, bool]:
    """Start the detached scheduler unless one runs; (its state, whether this call started it)."""
    running = scheduler(store)
    if running is not None:
        return running, False
    qdir = queue_dir(store)
    load_settings(store)  # a broken settings file is reported here, not in the log
    log_fd = os.open(qdir / "scheduler.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    with open(log_fd, "ab") as log:
        popen = spawn_detached([*SCHEDULER_CMD, str(store.root)], log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = scheduler(store)
        if state is not None:
            if state.pid != popen.pid:
                popen.wait(5)  # another start won the race; ours exits at once
            return state, state.pid == popen.pid
        if popen.poll() is not None and scheduler(store) is None:
            raise SchedulerError(
                f"the queue scheduler exited with code {popen.returncode}; see {qdir}/scheduler.log"
            )
        time.sleep(0.05)
    popen.kill()
    raise SchedulerError(f"the queue scheduler did not start within {START_TIMEOUT:.0f} s")


def stop_scheduler(store: RunStore, wait: float = 10.0) -> SchedulerState | None:
    """SIGTERM the scheduler (only if it is this folder's own). Running engines go on."""
    state = scheduler(store)
    if state is None:
        return None
    if send_signal(state.identity, signal.SIGTERM) and wait > 0:
        wait_gone(state.identity, wait)
    return state
