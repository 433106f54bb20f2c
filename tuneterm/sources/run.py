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

from tuneterm.script.metrics import MetricBook
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
    read: bool = False  # read from the start (now or by an earlier process), not glanced at
    glance: tuple[dict[str, list[int]], RunMeta] | None = None  # the stamps, what a glance saw
    _known: set[str] = field(default_factory=set)  # the names seen, and which way each is better
    _higher: dict[str, bool] = field(default_factory=dict)
    _values: dict[str, float] = field(default_factory=dict)  # the best value of each name
    _best: str = ""  # the metric that ranks the run (MetricBook.best)

    @classmethod
    def open(cls, found: Found) -> SourceRun:
        return cls(found, reader_for(found.source, found.path), new_meta(found))

    def poll(self) -> list[Event]:
        """The events appended since the last poll (and meta brought up to date)."""
        return self.feed(self.reader.poll())

    def feed(self, batch: Batch) -> list[Event]:
        """The events of what a reader found (and meta brought up to date)."""
        out = self._events(batch)
        self._facts(batch)
        resolved = batch.facts.get("resolved")
        if resolved:
            self.problems = [p for p in self.problems if not p.startswith(f"{resolved}:")]
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
        """Each log call's values as a `train` event (loss, lr) and a `val` event (the rest),
        as a script run's (script.metrics.events_of); the run's best followed as the values
        come (the MetricBook's rule, kept per name here: a run may hold millions)."""
        out: list[Event] = []
        m = self.meta
        step, started, last_loss, epoch = m.step, m.started, m.last_loss, self.epoch
        for group in _groups(batch.points):
            values = {p.name: p.value for p in group}
            t = group[-1].t
            epoch = values.pop("epoch", epoch)
            step = max(step, group[0].step)
            if started is None or t < started:
                started = t
            if not values:
                continue
            if not self._known.issuperset(values):
                self._learn(list(values))
            where = {"step": group[0].step, "epoch": epoch}
            loss, lr = values.pop("loss", None), values.pop("lr", None)
            if loss is not None:
                fields = {**where, "loss": loss, **({"lr": lr} if lr is not None else {})}
                out.append(self._event("train", t, fields))
                self._offer("loss", loss, fields)
                last_loss = loss
            if values:
                fields = {**where, **values}
                out.append(self._event("val", t, fields))
                for name, value in values.items():
                    self._offer(name, value, fields)
        self.epoch = epoch
        m.step, m.epoch, m.last_loss = step, math.ceil(epoch) if epoch else 0, last_loss
        m.started, m.created = started, started or 0.0
        best = self.book.bests.get(self._best, {})
        m.best = {k: v for k, v in best.items() if k != "epoch" or self.epoch}
        return out

    def _learn(self, names: list[str]) -> None:
        self._known.update(names)
        if self.book.see(names):
            self.meta.metrics = self.book.spec()
        self._best = self.book.best()
        for name in names:
            self._higher[name] = self.book.metric(name).higher

    def _offer(self, name: str, value: float, fields: dict[str, Any]) -> None:
        if not math.isfinite(value):
            return  # a NaN or inf is an alert (health), never the run's best
        old = self._values.get(name)
        if old is not None and (value <= old if self._higher[name] else value >= old):
            return
        self._values[name] = value
        epoch = fields.get("epoch")
        at = (
            {**fields, "epoch": int(epoch)}
            if isinstance(epoch, float) and math.isfinite(epoch)
            else fields
        )
        self.book.bests[name] = {**at, "metric": name, "value": value}

    def _facts(self, batch: Batch) -> None:
        facts, m = batch.facts, self.meta
        if "name" in facts:
            m.name = str(facts["name"])
        if isinstance(facts.get("hparams"), dict):
            m.hparams.update(facts["hparams"])
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
        self._learn([*self.book.seen, *(["loss"] if self.book.has_loss else [])])
        self._values = {k: float(b["value"]) for k, b in self.book.bests.items()}


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
