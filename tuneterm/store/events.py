"""The event queue: TinyDB segment files, one writer, many cursor readers.

Stock TinyDB rewrites its whole file in place on every insert, so a reader in another process
can see a torn file, and the cost per insert grows with the file (FACTS.md). Here:

* one `EventWriter` per run (the engine) owns the `events/` folder;
* events are buffered in memory and flushed in batches (`insert_multiple`) at most every
  `FLUSH_INTERVAL` seconds, by a background thread;
* each flush persists the active segment atomically (temp file, fsync, `os.replace`), so a
  reader sees either the previous or the next complete file, never a torn one;
* a segment is sealed at `SEGMENT_EVENTS` documents and never written again, so the cost of an
  event stays flat however long the run;
* an `EventReader` keeps a cursor (segment, last doc id) and re-opens the file on each poll;
  a poll that finds nothing new costs two `stat` calls.

Segment `N+1` is only created after segment `N` has been written complete, so a reader that
sees `N+1` exists can read `N` to its end and move on.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage

from tuneterm.store.eventtypes import ENVELOPE, Event, upgrade
from tuneterm.store.files import atomic_write_bytes, make_dir
from tuneterm.store.meta import UnreadableRun

MAX_PENDING = 10_000  # unflushed events in memory before emit() flushes in the caller's thread
SEGMENT_EVENTS = 2000
LOCK_FILE = ".writer.lock"  # flock'ed by the one live writer; the kernel drops it on kill -9
# Seconds between flushes, on a fixed schedule: emit-to-visible is at most this plus one flush,
# and stays under 250 ms with room for a slow fsync or a backlog at 20,000 events/s.
FLUSH_INTERVAL = 0.1
TABLE = "events"


def segment_path(events_dir: Path, index: int) -> Path:
    return events_dir / f"{index:06d}.json"


def list_segments(events_dir: Path) -> list[int]:
    try:
        names = os.listdir(events_dir)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())


class _SegmentStorage(Storage):
    """TinyDB storage for the writer: the segment lives in memory, every write is atomic."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._data: dict[str, dict[str, Any]] | None = None
        if path.exists():
            self._data = json.loads(path.read_bytes())

    def read(self) -> dict[str, dict[str, Any]] | None:
        # A shallow copy: TinyDB puts its updated table into what read() returned, and that must
        # not become our state unless write() below succeeds.
        return dict(self._data) if self._data is not None else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        payload = json.dumps(data, separators=(",", ":")).encode("utf-8")
        atomic_write_bytes(self.path, payload, self.fsync)
        self._data = data

    def close(self) -> None:
        pass


class _ReadOnlyStorage(Storage):
    """TinyDB storage for readers: one fresh read of a whole (atomically replaced) file."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def read(self) -> dict[str, Any]:
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        raise PermissionError("event segments are read-only for readers")


class WriterBusy(RuntimeError):
    """Another live `EventWriter` holds this queue: exactly one writer per file."""


def _lock_writer(events_dir: Path) -> int:
    fd = os.open(events_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WriterBusy(f"{events_dir}: another process is writing these events") from None
    return fd


class EventWriter:
    """The single writer of one run's event queue. Thread-safe `emit`; background flushing."""

    def __init__(
        self,
        events_dir: Path,
        flush_interval: float = FLUSH_INTERVAL,
        segment_events: int = SEGMENT_EVENTS,
        fsync: bool = True,
        background: bool = True,
    ) -> None:
        self.dir = events_dir
        self.flush_interval = flush_interval
        self.segment_events = segment_events
        self.fsync = fsync
        make_dir(events_dir)
        self._lock_fd: int | None = _lock_writer(events_dir)  # before touching any file
        for stale in events_dir.glob(".*.tmp"):  # left by a writer killed mid-flush
            stale.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[Event] = []
        self.emitted = 0  # events emitted by this writer (this process), for the final count
        self._stop = threading.Event()
        self._error: BaseException | None = None
        segments = list_segments(events_dir)
        self._index = segments[-1] if segments else 0
        self._open_segment()
        last = self._last_event()
        self.seq = int(last["seq"]) + 1 if last else 0
        if self._count >= self.segment_events:
            self._index += 1
            self._open_segment()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="event-flush", daemon=True)
            self._thread.start()

    def _open_segment(self) -> None:
        self._db = TinyDB(
            storage=_SegmentStorage, path=segment_path(self.dir, self._index), fsync=self.fsync
        )
        self._table = self._db.table(TABLE, cache_size=0)
        data = self._db.storage.read() or {}
        self._count = len(data.get(TABLE, {}))

    def _last_event(self) -> Event | None:
        data = self._db.storage.read() or {}
        docs = data.get(TABLE, {})
        if docs:
            return dict(docs[max(docs, key=int)])
        if self._index > 0:  # the active segment is empty: look at the previous one
            prev = json.loads(segment_path(self.dir, self._index - 1).read_bytes())
            docs = prev.get(TABLE, {})
            return dict(docs[max(docs, key=int)]) if docs else None
        return None

    def emit(self, kind: str, /, **fields: Any) -> Event:
        """Queue one event; visible to readers within `flush_interval` plus a flush. The
        envelope (`seq`, `t`, `kind`) is the writer's own: a field of that name is refused."""
        if not ENVELOPE.isdisjoint(fields):
            taken = sorted(ENVELOPE.intersection(fields))
            raise ValueError(f"{kind} event: {', '.join(taken)} is the writer's own field")
        with self._lock:
            event: Event = {"seq": self.seq, "t": round(time.time(), 3), "kind": kind, **fields}
            self.seq += 1
            self.emitted += 1
            self._pending.append(event)
            flood = len(self._pending) >= MAX_PENDING
        if flood:
            # Back-pressure: a producer faster than the background flusher writes in its own
            # thread, so the queue in memory (and the engine's RSS) stays bounded.
            self.flush()
        return event

    def flush(self) -> int:
        """Persist every pending event now; returns how many were written."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            written = 0
            try:
                while written < len(pending):
                    room = self.segment_events - self._count
                    chunk = pending[written : written + room]
                    self._table.insert_multiple(chunk)
                    self._count += len(chunk)
                    written += len(chunk)
                    if self._count >= self.segment_events:  # seal: never written again
                        self._index += 1
                        self._open_segment()
            except BaseException:
                with self._lock:  # not written (e.g. disk full): keep them for the next flush
                    self._pending[:0] = pending[written:]
                raise
            return written

    def _run(self) -> None:
        # Flush on a fixed schedule, not `flush_interval` after the previous flush ended: the
        # time a flush takes must not stretch the period (and the emit-to-visible delay).
        due = time.monotonic() + self.flush_interval
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due = max(due + self.flush_interval, time.monotonic())
            try:
                self.flush()
            except BaseException as exc:  # keep the error for close(); the run goes on
                self._error = exc

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Cursor:
    """Where a reader is: the segment it reads and the last doc id it has seen in it."""

    segment: int = 0
    doc_id: int = 0
    _stat: tuple[int, int, int] | None = field(default=None, repr=False)


class DamagedEvents(UnreadableRun):
    """An event segment that is not what a writer leaves: segments are replaced atomically, so a
    torn or foreign file means damage (truncation, a hand edit, a newer format). Readers report
    it and never rewrite the file."""


def _read_segment(path: Path) -> list[tuple[int, Event]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    where = f"events/{path.name}"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DamagedEvents(f"{where} is damaged ({len(raw)} bytes): {exc}") from None
    table = data.get(TABLE) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not all(
        k.isdigit() and isinstance(v, dict) and isinstance(v.get("seq"), int)
        for k, v in table.items()
    ):
        raise DamagedEvents(f"{where} is not an event segment this tuneterm reads")
    db = TinyDB(storage=_ReadOnlyStorage, data=data)
    return [(doc.doc_id, upgrade(dict(doc))) for doc in db.table(TABLE, cache_size=0).all()]


def check_events(events_dir: Path) -> None:
    """Read every segment once; raises DamagedEvents naming the first damaged one."""
    for index in list_segments(events_dir):
        _read_segment(segment_path(events_dir, index))


def missing_segments(events_dir: Path, events: int = 0) -> list[str]:
    """Segments that should be there and are not: a gap in the numbering, or fewer than the
    `events` meta.json counts need (segments hold SEGMENT_EVENTS each, in order)."""
    have = list_segments(events_dir)
    last = max([*have, (events - 1) // SEGMENT_EVENTS if events > 0 else -1])
    present = set(have)
    return [
        f"events/{segment_path(events_dir, i).name}" for i in range(last + 1) if i not in present
    ]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class EventReader:
    """Reads a run's events incrementally. Each `poll` returns only what is new."""

    def __init__(self, events_dir: Path, cursor: Cursor | None = None) -> None:
        self.dir = events_dir
        self.cursor = cursor or Cursor()

    def poll(self, limit: int | None = None) -> list[Event]:
        out: list[Event] = []
        cur = self.cursor
        while limit is None or len(out) < limit:
            path = segment_path(self.dir, cur.segment)
            # Look for the next segment *before* reading this one: if it exists, this one is
            # sealed and complete.
            sealed = os.path.exists(segment_path(self.dir, cur.segment + 1))
            st = _stat(path)
            if st is None:
                if not sealed:
                    break
                cur.segment, cur.doc_id, cur._stat = cur.segment + 1, 0, None
                continue
            if st != cur._stat:
                docs = [d for d in _read_segment(path) if d[0] > cur.doc_id]
                docs.sort(key=lambda d: d[0])
                if limit is not None:
                    docs = docs[: limit - len(out)]
                for doc_id, event in docs:
                    out.append(event)
                    cur.doc_id = doc_id
                if limit is not None and len(out) >= limit:
                    break  # leave _stat unset: there may be more in this segment
                cur._stat = st
            if not sealed:
                break
            cur.segment, cur.doc_id, cur._stat = cur.segment + 1, 0, None
        return out

    def __iter__(self) -> Iterator[Event]:
        while batch := self.poll(limit=SEGMENT_EVENTS):
            yield from batch


def read_all(events_dir: Path) -> list[Event]:
    return EventReader(events_dir).poll()


def count_events(events_dir: Path) -> int:
    return sum(1 for _ in EventReader(events_dir))


def last_event(events_dir: Path, kind: str | None = None) -> Mapping[str, Any] | None:
    """The newest event (of a kind), reading backwards segment by segment."""
    for index in reversed(list_segments(events_dir)):
        docs = _read_segment(segment_path(events_dir, index))
        for _, event in sorted(docs, key=lambda d: d[0], reverse=True):
            if kind is None or event.get("kind") == kind:
                return event
    return None
