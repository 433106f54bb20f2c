"""The run store: run folders, metadata, and the TinyDB event queue."""

from tuneterm.store.events import Cursor, EventReader, EventWriter
from tuneterm.store.meta import RunLabel, RunMeta, UnreadableRun
from tuneterm.store.runs import AmbiguousRun, RunInfo, RunNotFound, RunStore

__all__ = [
    "AmbiguousRun",
    "Cursor",
    "EventReader",
    "EventWriter",
    "RunInfo",
    "RunLabel",
    "RunMeta",
    "RunNotFound",
    "RunStore",
    "UnreadableRun",
]
