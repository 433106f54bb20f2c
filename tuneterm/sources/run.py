"""A run of another tool as tuneterm sees it: a reader's points turned into `train` and `val`
events, and a `RunMeta` (progress, last loss, best, metric spec) grown as they come. The metric
spec is built from the names by the same `MetricBook` as a script run's, so every pane and
ranking reads it the same way."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.script.metrics import MetricBook, Record, events_of
from tuneterm.sources.points import Batch, Point
from tuneterm.sources.readers import Reader, mtime, reader_for
from tuneterm.sources.scan import Found
from tuneterm.store.events import EventReader
from tuneterm.store.eventtypes import Event
from tuneterm.store.meta import RunMeta

SOURCE_NAMES = {
    "tb": "TensorBoard",
    "hf": "HF Trainer",
    "lightning": "Lightning",
    "mlflow": "MLflow",
    "jsonl": "JSON lines",
}


def new_meta(found: Found) -> RunMeta:
    return RunMeta(
        id=found.id,
        name=found.name,
        status="running",
        task="script",
        model=SOURCE_NAMES.get(found.source, found.source),
        dataset="",
        created=0.0,
        updated=0.0,
    )


def _groups(points: list[Point]) -> Iterator[list[Point]]:
    """Consecutive points of one step, each name once: what one log call wrote."""
    group: list[Point] = []
    names: set[str] = set()
    for p in points:
        if group and (p.step != group[0].step or p.name in names):
            yield group
            group, names = [], set()
        group.append(p)
        names.add(p.name)
    if group:
        yield group


@dataclass
class SourceRun:
    found: Found
    reader: Reader
    meta: RunMeta
    book: MetricBook = field(default_factory=MetricBook)
    problems: list[str] = field(default_factory=list)
    seq: int = 0
    epoch: float = 0.0
    stamps: dict[str, list[int]] = field(default_factory=dict)  # the files as last read

    @classmethod
    def open(cls, found: Found) -> SourceRun:
        return cls(found, reader_for(found.source, found.path), new_meta(found))

    def poll(self) -> list[Event]:
        """The events appended since the last poll (and meta brought up to date)."""
        batch = self.reader.poll()
        out = self._events(batch)
        self._facts(batch)
        for problem in batch.problems:
            if problem not in self.problems:
                self.problems.append(problem)
                out.append(self._event("log", time.time(), {"level": "warning", "msg": problem}))
        self.meta.error = "; ".join(self.problems[-3:])
        self.meta.updated = max([self.meta.updated, *(mtime(p) for p in self.reader.files())])
        return out

    def _event(self, kind: str, t: float, fields: dict[str, Any]) -> Event:
        event: dict[str, Any] = {"seq": self.seq, "t": t, "kind": kind, **fields}
        self.seq += 1
        return event

    def _events(self, batch: Batch) -> list[Event]:
        out: list[Event] = []
        m = self.meta
        for group in _groups(batch.points):
            values = {p.name: p.value for p in group}
            t = max(p.t for p in group)
            step = group[0].step
            self.epoch = values.pop("epoch", self.epoch)
            if m.started is None or t < m.started:
                m.started = m.created = t
            m.step, m.epoch = max(m.step, step), math.ceil(self.epoch) if self.epoch else 0
            if not values:
                continue
            if self.book.see(list(values)):
                m.metrics = self.book.spec()
            for kind, fields in events_of(Record(values, step, self.epoch), step, self.epoch):
                if kind == "train":
                    m.last_loss = fields["loss"]
                m.best = self.book.offer(fields) or m.best
                if not self.epoch:  # a run that counts no epochs: none to show
                    m.best.pop("epoch", None)
                out.append(self._event(kind, t, fields))
        return out

    def _facts(self, batch: Batch) -> None:
        facts, m = batch.facts, self.meta
        if "name" in facts:
            m.name = str(facts["name"])
        if "status" in facts:
            m.status = str(facts["status"])
        total = facts.get("hf_max_steps") or facts.get("total_steps")
        if isinstance(total, int) and total > 0:
            m.total_steps = total
        for key in ("best_metric", "best_model_checkpoint"):
            if f"hf_{key}" in facts:
                m.final[key] = facts[f"hf_{key}"]
        done = facts.get("hf_global_step")
        if isinstance(done, int) and m.total_steps and done >= m.total_steps:
            m.status = "completed"

    def state(self) -> dict[str, Any]:
        """What the cache keeps: where the reader is, and what the events so far made."""
        return {
            "reader": self.reader.state(),
            "meta": self.meta.model_dump(),
            "book": {
                "seen": self.book.seen,
                "has_loss": self.book.has_loss,
                "bests": self.book.bests,
            },
            "problems": self.problems,
            "seq": self.seq,
            "epoch": self.epoch,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.reader.restore(state["reader"])
        self.meta = RunMeta.model_validate(state["meta"])
        book = state["book"]
        self.book = MetricBook(
            seen=list(book["seen"]), has_loss=bool(book["has_loss"]), bests=dict(book["bests"])
        )
        self.problems = list(state["problems"])
        self.seq, self.epoch = int(state["seq"]), float(state["epoch"])


class SourceEvents(EventReader):
    """A source run's events for the readers of a run's queue (`events`, health, the TUI):
    each `poll` returns what the run's files gained since the last one."""

    def __init__(self, found: Found) -> None:
        super().__init__(Path(found.path))
        self.run = SourceRun.open(found)

    def poll(self, limit: int | None = None) -> list[Event]:
        return self.run.poll()

    def __iter__(self) -> Iterator[Event]:
        yield from self.poll()
