"""Where a run's wall time went, part by part, read from its own events (`show --timing`).

The engine marks its start-up with `phase` events (imports done, data ready, model built,
first optimizer step) and the `imports` one carries the time its process started. From there
every event that ends a stretch of work closes one part: the last `train` event of an epoch
closes its training, `val` its validation, a `checkpoint` written in place its write, `test`
the test evaluation and the final status the end. The parts tile the wall time, so their
shares add up to 1. A checkpoint written in the background, while the next epoch trained, is
off the wall: it is listed apart (`background`), with how long it took to land.

Only the last session of a resumed run is read: its events start at its last `starting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tuneterm.store.events import read_all
from tuneterm.store.eventtypes import Event
from tuneterm.store.runs import RunStore

PHASE_LABELS = {
    "imports": "imports",
    "data": "data",
    "model": "model",
    "first_step": "first step",
}
FINAL = ("completed", "stopped", "failed", "crashed", "killed")


@dataclass(frozen=True)
class Part:
    name: str  # "imports", "train epoch 2", "val epoch 2", "checkpoint epoch 2", "test"...
    seconds: float
    share: float  # of the wall time


@dataclass
class Timing:
    wall: float  # process start (or the session's first event) to its last mark
    parts: list[Part]
    background: list[Part] = field(default_factory=list)  # off the wall: share 0
    optimizer_impl: str = ""  # from the start event

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def largest(self, n: int = 3) -> list[Part]:
        return sorted(self.parts, key=lambda p: p.seconds, reverse=True)[:n]


def _session(events: Sequence[Event]) -> list[Event]:
    starts = [i for i, e in enumerate(events) if _is_status(e, "starting")]
    return list(events[starts[-1] :]) if starts else list(events)


def _is_status(e: Event, *statuses: str) -> bool:
    return e.get("kind") == "status" and e.get("status") in statuses


def _marks(events: list[Event]) -> tuple[list[tuple[float, str]], list[tuple[str, float]]]:
    """(time, the part it closes) in order, and (name, seconds) of background writes."""
    last_train: dict[int, Event] = {}
    first_train: dict[int, float] = {}
    for e in events:
        if e.get("kind") == "train":
            last_train[int(e.get("epoch", 0))] = e
            first_train.setdefault(int(e.get("epoch", 0)), float(e["t"]))
    marks: list[tuple[float, str]] = []
    background: list[tuple[str, float]] = []
    val_t: dict[int, float] = {}
    for e in events:
        kind, t = e.get("kind"), float(e["t"])
        if kind == "phase":
            marks.append((t, PHASE_LABELS.get(str(e.get("name")), str(e.get("name")))))
        elif _is_status(e, "running"):
            marks.append((t, "start"))
        elif kind == "train" and last_train.get(int(e.get("epoch", 0))) is e:
            marks.append((t, f"train epoch {e.get('epoch')}"))
        elif kind == "val":
            val_t[int(e.get("epoch", 0))] = t
            marks.append((t, f"val epoch {e.get('epoch')}"))
        elif kind == "checkpoint":
            epoch = int(e.get("epoch", 0))
            name = f"checkpoint epoch {epoch}" if e.get("which") == "epoch" else "checkpoint stop"
            if first_train.get(epoch + 1, t) < t:  # written while the next epoch trained
                background.append((name, t - val_t.get(epoch, t)))
            else:
                marks.append((t, name))
        elif kind == "test":
            marks.append((t, "test"))
        elif _is_status(e, *FINAL):
            marks.append((t, "end"))
    marks.sort(key=lambda m: m[0])
    return marks, background


def timing(events: Sequence[Event]) -> Timing:
    """The parts of the last session of a run, from its events."""
    session = _session(events)
    if not session:
        return Timing(0.0, [])
    origin = float(session[0]["t"])
    for e in session:
        if e.get("kind") == "phase" and e.get("process_start"):
            origin = min(origin, float(e["process_start"]))
            break
    marks, background = _marks(session)
    prev, seconds = origin, []
    for t, name in marks:
        seconds.append((name, max(0.0, t - prev)))
        prev = max(prev, t)
    wall = prev - origin
    share = (lambda s: s / wall) if wall > 0 else (lambda s: 0.0)
    impl = next((str(e.get("optimizer_impl", "")) for e in session if e.get("kind") == "start"), "")
    return Timing(
        wall=round(wall, 3),
        parts=[Part(n, round(s, 3), round(share(s), 4)) for n, s in seconds],
        background=[Part(n, round(s, 3), 0.0) for n, s in background],
        optimizer_impl=impl,
    )


def lines(tm: Timing) -> list[str]:
    """`show --timing` as text: one part a line, seconds and share of the wall."""
    if not tm.parts:
        return ["no timing: the run has no events yet"]
    width = max(len(p.name) for p in [*tm.parts, *tm.background])
    out = [f"{'part':<{width}}  {'seconds':>8}  {'share':>6}"]
    out += [f"{p.name:<{width}}  {p.seconds:>8.2f}  {p.share:>6.1%}" for p in tm.parts]
    out.append(f"{'wall':<{width}}  {tm.wall:>8.2f}  {1:>6.0%}")
    for p in tm.background:
        out.append(f"{p.name:<{width}}  {p.seconds:>8.2f}  (in the background, off the wall)")
    if tm.optimizer_impl:
        out.append(f"optimizer step: {tm.optimizer_impl}")
    return out


def of_run(store: RunStore, run_id: str) -> Timing:
    return timing(read_all(store.run_dir(run_id) / "events"))
