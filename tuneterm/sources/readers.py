"""One small interface for every format, and the registry of readers by source name.

A reader is made for one run folder (or file) and polled: each `poll` returns what was
appended since the last one. Files that only grow are read from a byte offset per file; a
line or record that is not complete yet waits for the next poll. `state`/`restore` carry the
offsets (and what a reader must remember with them) through tuneterm's cache, so the next
process starts where this one stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tuneterm.sources.points import Batch

# Seconds a file may end in half a record before that is reported as damage (a live writer
# finishes its record long before this).
TORN_AFTER_S = 30.0


class Reader(Protocol):
    def poll(self) -> Batch: ...

    def files(self) -> list[Path]:
        """The files the run is read from, as found now (for the cache key)."""
        ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


ReaderFactory = Callable[[Path], Reader]
READERS: dict[str, ReaderFactory] = {}


def register(source: str) -> Callable[[ReaderFactory], ReaderFactory]:
    def add(factory: ReaderFactory) -> ReaderFactory:
        READERS[source] = factory
        return factory

    return add


def reader_for(source: str, path: Path) -> Reader:
    try:
        factory = READERS[source]
    except KeyError:
        raise ValueError(
            f"source = {source!r}: not a known format (known: {', '.join(sorted(READERS))})"
        ) from None
    return factory(path)


def stale(path: Path, after: float = TORN_AFTER_S) -> bool:
    try:
        return time.time() - os.stat(path).st_mtime > after
    except OSError:
        return True


def mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@dataclass
class LineTail:
    """A text file that grows by whole lines: each `read` returns the complete lines appended
    since the last one. A file that shrank was rewritten: it is read again from the start
    (`restarted` says so, for readers that must then skip what they already gave)."""

    path: Path
    offset: int = 0
    restarted: bool = False

    def read(self) -> list[str]:
        self.restarted = False
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return []
        if size < self.offset:
            self.offset, self.restarted = 0, True
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return []  # half a line: the writer has not finished it
        self.offset += end + 1
        return data[: end + 1].decode("utf-8", errors="replace").splitlines()
