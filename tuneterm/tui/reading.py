"""Reading the store for the TUI, cheaply enough to repeat every second from a worker thread.

Nothing here touches widgets; workers call these and post what they return as messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneterm.config import ConfigError, flatten, run_config
from tuneterm.sources import is_source_id
from tuneterm.store import EventReader, RunInfo, RunStore
from tuneterm.store.meta import ACTIVE, UnreadableRun
from tuneterm.store.runs import number_queue
from tuneterm.tui.pipeline import describe as describe_pipeline


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


class RunLister:
    """`RunStore.list()` that re-reads only runs whose meta.json or label.json changed (and
    re-checks liveness of active ones), so 1,000 runs refresh in milliseconds."""

    def __init__(self, store: RunStore, damaged: dict[str, str] | None = None) -> None:
        self.store = store
        self._cache: dict[str, tuple[int, int, RunInfo]] = {}
        self.damaged = damaged if damaged is not None else {}  # run id -> reason (EventPoller)

    def scan(self) -> list[RunInfo]:
        out = []
        ids = self.store.ids()
        for run_id in ids:
            path = self.store.root / run_id
            # a run of another tool: its newest file stands for meta.json (tuneterm.sources)
            meta = self.store.meta_path(run_id) if is_source_id(run_id) else path / "meta.json"
            stamp = (_mtime(meta), _mtime(path / "label.json"))
            hit = self._cache.get(run_id)
            if hit and (hit[0], hit[1]) == stamp and _settled(hit[2]):
                info = hit[2]
            else:
                try:
                    info = self.store.info(run_id)
                except Exception:  # a run deleted between listdir and read
                    continue
                self._cache[run_id] = (*stamp, info)
            if run_id in self.damaged and info.status != "unreadable":
                reason = self.damaged[run_id]
                info = RunInfo(run_id, info.path, "unreadable", None, info.label, reason)
            out.append(info)
        for gone in set(self._cache) - set(ids):
            del self._cache[gone]
        number_queue(out)
        return out


class ConfigCache:
    """Flattened configs for filtering by config value; config.toml never changes after launch."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._cache: dict[str, dict[str, Any]] = {}

    def get(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._cache:
            try:
                self._cache[run_id] = flatten(run_config(self.store, run_id))
            except (ConfigError, OSError, ValueError):
                self._cache[run_id] = {}
        return self._cache[run_id]


@dataclass
class RunText:
    """The text panes of one run, read in one go: config TOML, the training pipeline it
    resolves to, and the engine log tail."""

    run_id: str
    config: str
    log_tail: str
    pipeline: str = ""


def read_text(store: RunStore, run_id: str, lines: int = 40) -> RunText:
    try:
        config = (store.run_dir(run_id) / "config.toml").read_text(encoding="utf-8")
    except OSError as exc:
        config = f"# config.toml cannot be read: {exc.strerror}"
    try:
        with open(store.log_path(run_id), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            tail = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        tail = []
    return RunText(run_id, config, "\n".join(tail), describe_pipeline(config))


class EventPoller:
    """One cursor reader per watched run; `poll` returns only new events per run.

    Used from a single worker thread at a time."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.readers: dict[str, EventReader] = {}
        self.damaged: dict[str, str] = {}  # runs with a damaged event segment: never re-read

    def poll(self, run_ids: list[str], limit: int = 50_000) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for run_id in run_ids:
            if run_id in self.damaged:
                continue
            reader = self.readers.get(run_id)
            if reader is None:
                try:
                    reader = self.readers[run_id] = self.store.events(run_id)
                except Exception:
                    continue
            try:
                events = reader.poll(limit=limit)
            except UnreadableRun as exc:
                self.damaged[run_id] = exc.reason
                continue
            except (OSError, ValueError):
                continue  # a run deleted or a segment replaced mid-read: next poll
            if events:
                out[run_id] = events
        return out

    def forget(self, run_id: str) -> None:
        self.readers.pop(run_id, None)


def _settled(info: RunInfo) -> bool:
    """A run whose status changes only with its files: not active, and not on a Slurm job
    still in the queue (Slurm's state changes without them)."""
    if info.status in (*ACTIVE, "starting"):
        return False
    return info.job is None or info.job.ended
