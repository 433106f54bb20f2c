"""Check every run of a store in one pass, and notify each alert and each end once.

`Watcher.check()` is what `tuneterm health`, `ls --json`/`show --json` and the TUI use: it keeps
one `RunHealth` and one event cursor per run, so a pass reads only what is new; a run that has
ended and whose meta.json did not change since the last pass costs one `stat`.

`python -m tuneterm.health.watch RUNS_DIR` is the small per-user watcher that notifies when no
TUI is open: started with a run when `[notify] command` is set (`ensure_watcher`), one per runs
folder (an flock held for life), it exits once no run has been active for `IDLE_EXIT` seconds.
It alone writes `RUNS/.health/` (its identity, the keys it has notified, its log).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# tasks registers the kinds (their config tables and checks) before a config is read
from tuneterm import tasks
from tuneterm.config import run_config
from tuneterm.config.operations import HealthSection
from tuneterm.errors import ConfigError
from tuneterm.health import detectors
from tuneterm.health.alerts import Alert
from tuneterm.health.episodes import AlertBook
from tuneterm.health.notify import NotifySettings, alert_env, load_notify, notify
from tuneterm.health.state import RunHealth
from tuneterm.proc import ProcessIdentity, is_alive, spawn_detached
from tuneterm.slurm.states import ALERTS as SLURM_ALERTS
from tuneterm.store.events import EventReader
from tuneterm.store.files import FILE_MODE, atomic_write_json, read_json
from tuneterm.store.meta import ACTIVE, QUEUED, UnreadableRun
from tuneterm.store.runs import RunInfo, RunStore

POLL = 2.0  # seconds between passes of the notifying watcher
IDLE_EXIT = 120.0  # ... which exits after this long with no active run
MARKER = "tuneterm.health.watch"
WATCH_CMD = [sys.executable, "-m", MARKER]
CLOSED = ("completed", "cancelled", "ended")  # ended: a run of another tool
# A run whose engine is (about to be) up keeps the watcher alive; `submitted` waits in a batch
# queue for as long as it takes, with nothing here to watch.
LIVE = tuple(
    s for s in ACTIVE if s not in ("submitted", "pending")
)  # a run that ended like this has no open alert


@dataclass
class _Watched:
    reader: EventReader
    health: RunHealth | None = None  # made when the run first needs checking
    meta_mtime: int = -1
    ended: bool = False
    status: str = ""
    name: str = ""
    attempt: int = 0
    alerts: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class RunHealthReport:
    id: str
    name: str
    status: str
    alerts: list[Alert]
    attempt: int = 0  # the run's resumes: a resumed run's alerts and end are told again


class Watcher:
    def __init__(self, store: RunStore, settings: HealthSection | None = None) -> None:
        self.store = store
        self.settings = settings or HealthSection.model_validate({})
        self._runs: dict[str, _Watched] = {}

    def check(self, now: float | None = None, only: str | None = None) -> list[RunHealthReport]:
        """One pass: every run's open alerts (or one run's, with `only`)."""
        now = time.time() if now is None else now
        try:
            disk: Any = shutil.disk_usage(self.store.root)
        except OSError:
            disk = None
        out = []
        for rid in [only] if only else self.store.ids():
            report = self._check_one(rid, now, disk)
            if report is not None:
                out.append(report)
        return out

    def _settings(self, rid: str) -> HealthSection:
        """The run's own thresholds (its config's [health]), else the watcher's."""
        try:
            return run_config(self.store, rid).health
        except (ConfigError, OSError):  # an unreadable config: `show` says why
            return self.settings

    def _check_one(self, rid: str, now: float, disk: Any) -> RunHealthReport | None:
        try:
            mtime = os.stat(self.store.meta_path(rid)).st_mtime_ns
        except OSError:
            self._runs.pop(rid, None)
            return None
        w = self._runs.get(rid)
        if w is None:
            w = self._runs[rid] = _Watched(self.store.events(rid))
        elif w.ended and w.meta_mtime == mtime:
            return RunHealthReport(rid, w.name, w.status, w.alerts, w.attempt)
        info = self.store.info(rid)
        w.meta_mtime, w.status, w.name = mtime, info.status, _name(info)
        w.attempt = info.meta.resumes if info.meta else 0
        failed_job = info.job is not None and info.job.state in SLURM_ALERTS
        if info.status in CLOSED and not _ended_nonfinite(info) and not failed_job:
            # no open alert: its events need not be read at all
            w.ended, w.alerts = True, []
            return RunHealthReport(rid, w.name, info.status, [], w.attempt)
        if w.health is None:
            w.health = RunHealth(self._settings(rid), engine=_by_engine(info))
        with contextlib.suppress(UnreadableRun):  # a damaged segment: `show` tells of it
            w.health.feed(w.reader.poll())
        w.health.job = info.job
        w.health.job_since = float(info.meta.slurm.get("submitted", 0.0)) if info.meta else 0.0
        running = info.status in ACTIVE and info.status not in ("created", "submitted", "pending")
        w.ended = info.status not in (*ACTIVE, QUEUED)
        w.alerts = detectors.check(w.health, now, running, info.alive, disk)
        return RunHealthReport(rid, w.name, info.status, w.alerts, w.attempt)


def _name(info: RunInfo) -> str:
    return info.name or info.id


def _ended_nonfinite(info: RunInfo) -> bool:
    """A run (a script's, which ends `completed` whatever its loss) whose last loss is NaN or
    inf keeps its nan_loss alert after it ends."""
    loss = info.meta.last_loss if info.meta else None
    return loss is not None and not math.isfinite(loss)


def _by_engine(info: RunInfo) -> bool:
    """Whether tuneterm's engine trains the run (a kind with a runner of its own does not)."""
    spec = tasks.find(info.meta.task) if info.meta else None
    return spec is None or not spec.runner


# -- the notifying watcher process -----------------------------------------------------------
def health_dir(store: RunStore) -> Path:
    path = store.root / ".health"
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", flush=True)


class Notifier:
    """What the watcher process notifies: each alert episode once (`AlertBook`), and each end
    of a run attempt it saw running."""

    def __init__(self, store: RunStore, settings: NotifySettings, started: float) -> None:
        self.store, self.settings, self.started = store, settings, started
        self.path = health_dir(store) / "notified.json"
        raw = read_json(self.path) if self.path.exists() else {}
        self.book = AlertBook.from_json(raw if isinstance(raw, dict) else {})
        self.active: set[str] = set()

    def pass_(self, reports: list[RunHealthReport], now: float | None = None) -> bool:
        """Notify what is new in this pass; returns whether any run is active. A run that is
        gone (deleted) or waits in a batch queue (`submitted`) keeps nothing alive."""
        now = time.time() if now is None else now
        before = self.book.to_json()
        for r in reports:
            for alert in self.book.ring(r.id, r.attempt, r.alerts, now):
                self._send(r, alert)
            if r.status in LIVE:
                self.active.add(r.id)
            elif r.id in self.active and r.status not in (QUEUED, "submitted", "pending"):
                self.active.discard(r.id)
                if self.book.ended(r.id, r.attempt):
                    self._send(r, None)
        present = {r.id for r in reports}
        self.active &= present
        self.book.forget(present)
        after = self.book.to_json()
        if after != before:
            atomic_write_json(self.path, after)
        return bool(self.active)

    def _send(self, r: RunHealthReport, alert: Alert | None) -> None:
        what = f"{alert.kind} ({alert.severity})" if alert else f"ended {r.status}"
        problem = notify(self.settings, alert_env(r, r.status, alert))
        log(f"{r.id}: {what}" + (f": {problem}" if problem else ""))


def watcher_identity(store: RunStore) -> ProcessIdentity | None:
    try:
        raw = read_json(store.root / ".health" / "watcher.json")
        ident = ProcessIdentity(raw["pid"], raw["start_time"], raw["root"], MARKER)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ident if raw["root"] == str(store.root) and is_alive(ident) else None


def ensure_watcher(store: RunStore) -> bool:
    """Start the notifying watcher of this runs folder unless it runs or nothing is to be
    notified (no `[notify] command`); returns whether one runs now. Never raises."""
    if not load_notify().command or watcher_identity(store) is not None:
        return watcher_identity(store) is not None
    try:
        hdir = health_dir(store)
        fd = os.open(hdir / "watcher.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        with open(fd, "ab") as out:
            spawn_detached([*WATCH_CMD, str(store.root)], out)
    except OSError:
        return False
    return True


def serve(store: RunStore, stop: threading.Event, poll: float, idle_exit: float) -> None:
    settings = load_notify()
    if settings.problem:
        log(settings.problem)
    notifier = Notifier(store, settings, time.time())
    watcher = Watcher(store)
    idle_since = time.monotonic()
    while not stop.is_set():
        if notifier.pass_(watcher.check()):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > idle_exit:
            log(f"no active run for {idle_exit:.0f} s; exiting")
            return
        stop.wait(poll)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {MARKER}")
    ap.add_argument("runs_dir")
    ap.add_argument("--poll", type=float, default=POLL)
    ap.add_argument("--idle-exit", type=float, default=IDLE_EXIT)
    args = ap.parse_args(argv)
    store = RunStore(Path(args.runs_dir))
    hdir = health_dir(store)
    lock_fd = os.open(hdir / "watcher.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 3  # another watcher serves this folder
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    me = ProcessIdentity.current(str(store.root), MARKER)
    atomic_write_json(
        hdir / "watcher.json", {"pid": me.pid, "start_time": me.start_time, "root": str(store.root)}
    )
    log(f"health watcher {me.pid} for {store.root}")
    try:
        serve(store, stop, args.poll, args.idle_exit)
    finally:
        (hdir / "watcher.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
