"""A run's event history as plot-ready series, and min/max downsampling for charts.

Pure data: no textual, no I/O. A worker thread reads events from the store; the UI thread
feeds them to `RunHistory.add`, which keeps growing arrays (cheap appends, zero-copy numpy
views for downsampling) so a curve of a million points redraws in milliseconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tuneterm.store.eventtypes import (
    CheckpointEvent,
    ErrorEvent,
    LogEvent,
    ResumeEvent,
    StatusEvent,
    SysEvent,
    TestResultEvent,
    TrainEvent,
    ValEvent,
    metric_fields,
)

XAxis = Literal["step", "epoch", "time"]
X_AXES: tuple[XAxis, ...] = ("step", "epoch", "time")
LOG_LINES = 500
Mask = np.ndarray  # of bool, one per row (`np` is also the name of a method of Series)


class Series:
    """Parallel growing float columns (one per name), appended row by row.

    Columns are numpy buffers with spare capacity; `np(name)` is a view of the filled part,
    so readers never copy and appends stay O(1) amortised."""

    def __init__(self, *names: str, capacity: int = 256) -> None:
        self.names = names
        self.n = 0
        self.cols: dict[str, np.ndarray] = {n: np.empty(capacity) for n in names}

    def __len__(self) -> int:
        return self.n

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = len(self.cols[self.names[0]])
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name, col in self.cols.items():
            grown = np.empty(cap)
            grown[: self.n] = col[: self.n]
            self.cols[name] = grown

    def append(self, **values: float) -> None:
        self._reserve(1)
        i = self.n
        for name, col in self.cols.items():
            v = values.get(name)
            col[i] = math.nan if v is None else float(v)
        self.n += 1

    def extend(self, rows: Mapping[str, Iterable[float]]) -> None:
        arrays = {name: np.asarray(rows[name], dtype=np.float64) for name in self.names}
        k = len(arrays[self.names[0]])
        self._reserve(k)
        for name, col in self.cols.items():
            col[self.n : self.n + k] = arrays[name]
        self.n += k

    def np(self, name: str) -> np.ndarray:
        """The filled part of a column; all NaN for a column never seen (a metric this run
        does not report)."""
        col = self.cols.get(name)
        return np.full(self.n, math.nan) if col is None else col[: self.n]

    def add_column(self, name: str) -> None:
        """A new column, NaN for the rows before it (a field first seen mid-run)."""
        if name not in self.cols:
            col = np.empty(len(self.cols[self.names[0]]))
            col[: self.n] = math.nan
            self.cols[name] = col
            self.names = (*self.names, name)

    def truncate_after(self, name: str, limit: float) -> None:
        """Drop the rows whose `name` column is > limit (a resumed run replays those steps)."""
        self._keep(self.np(name) <= limit)

    def drop_from(self, name: str, first: float) -> None:
        """Drop the rows whose `name` column is >= first (a resumed script starts there)."""
        self._keep(~(self.np(name) >= first))

    def _keep(self, keep: Mask) -> None:
        if keep.all():
            return
        if keep[: int(keep.sum())].all():  # the usual case: a tail to cut
            self.n = int(keep.sum())
            return
        count = int(keep.sum())
        for col_name, col in self.cols.items():
            col[:count] = col[: self.n][keep]
            del col_name
        self.n = count


@dataclass
class LogLine:
    t: float
    level: str
    msg: str


@dataclass
class RunHistory:
    """Everything the detail panes plot or show for one run, built from its events."""

    train: Series = field(
        default_factory=lambda: Series(
            "step", "epoch", "t", "loss", "lr", "examples_s", "data_wait", "gpu_mem"
        )
    )
    # step, epoch, t, then every numeric field the run's val events carry, whatever its kind
    val: Series = field(default_factory=lambda: Series("step", "epoch", "t"))
    sys: Mapping[str, Any] = field(default_factory=dict)  # the last `sys` event
    logs: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    test: Mapping[str, Any] = field(default_factory=dict)  # the `test` event
    error: str = ""
    status: str = ""
    first_t: float = 0.0
    last_seq: int = -1
    events: int = 0
    log_total: int = 0  # lines ever logged (the deque keeps the last LOG_LINES)
    version: int = 0  # bumped on every change, so views redraw only when needed
    # The series whose first step after a `resume` event is still to come: that step is
    # where the resumed run starts, and the points it replays from there are dropped.
    resumed: set[str] = field(default_factory=set)
    # The train rows where each resumed run's steps begin: no speed is measured across one
    resume_rows: list[int] = field(default_factory=list)

    def add(self, events: Iterable[Mapping[str, Any]]) -> None:
        changed = False
        for ev in events:
            changed = True
            self.events += 1
            self.last_seq = max(self.last_seq, int(ev.get("seq", -1)))
            t = float(ev.get("t", 0.0))
            if not self.first_t:
                self.first_t = t
            on = _ON.get(str(ev.get("kind")))
            if on is not None:  # a kind this view does not show (data, adapt...) is counted
                on(self, t, ev)
        if changed:
            self.version += 1

    def _train(self, t: float, ev: TrainEvent) -> None:
        self.after_resume("train", self.train, ev)
        self.train.append(
            step=ev.get("step", 0),
            epoch=ev.get("epoch", 0),
            t=t,
            loss=ev.get("loss", math.nan),
            lr=ev.get("lr", math.nan),
            examples_s=ev.get("examples_s", math.nan),
            data_wait=ev.get("data_wait", math.nan),
            gpu_mem=ev.get("gpu_mem_peak", math.nan),
        )

    def _val(self, t: float, ev: ValEvent) -> None:
        self.after_resume("val", self.val, ev)
        metrics = metric_fields(ev)
        for name in metrics:
            self.val.add_column(name)
        self.val.append(step=ev.get("step", 0), epoch=ev.get("epoch", 0), t=t, **metrics)

    def _resume(self, t: float, ev: ResumeEvent) -> None:
        self.resumed = {"train", "val"}
        if "step" in ev:  # the engine's checkpoint: what came after it is replayed
            step = float(ev["step"])
            self.train.truncate_after("step", step)
            self.val.truncate_after("step", step)
            self._log(t, "info", f"resumed at step {int(step)}")
        else:  # a script: where it starts is its first step from here on
            self._log(t, "info", "resumed")

    def after_resume(self, name: str, series: Series, ev: Mapping[str, Any]) -> None:
        """The first step of `series` after a resume: drop the points it replays."""
        if name in self.resumed:
            self.resumed.discard(name)
            series.drop_from("step", float(ev.get("step", 0)))
            if series is self.train:
                kept = [r for r in self.resume_rows if r < len(series)]
                self.resume_rows = [*kept, len(series)]

    def _sys(self, t: float, ev: SysEvent) -> None:
        self.sys = ev

    def _log_event(self, t: float, ev: LogEvent) -> None:
        self._log(t, str(ev.get("level", "info")), str(ev.get("msg", "")))

    def _error(self, t: float, ev: ErrorEvent) -> None:
        self.error = str(ev.get("message", ""))
        self._log(t, "error", self.error)
        for line in str(ev.get("traceback", "")).splitlines()[-12:]:
            self._log(t, "trace", line)

    def _status(self, t: float, ev: StatusEvent) -> None:
        self.status = str(ev.get("status", ""))
        extra = f": {ev['error']}" if ev.get("error") else ""
        self._log(t, "status", f"{self.status}{extra}")

    def _test(self, t: float, ev: TestResultEvent) -> None:
        self.test = ev

    def _checkpoint(self, t: float, ev: CheckpointEvent) -> None:
        self._log(t, "debug", f"checkpoint {ev.get('which', '')} at step {ev.get('step')}")

    def _log(self, t: float, level: str, msg: str) -> None:
        self.logs.append(LogLine(t, level, msg))
        self.log_total += 1

    def x_of(self, series: Series, axis: XAxis, steps_per_epoch: float = 0.0) -> np.ndarray:
        """The x values of a series on the chosen axis (epoch is fractional when known)."""
        if axis == "time":
            return (series.np("t") - self.first_t) / 60.0
        if axis == "epoch":
            if series is self.train and steps_per_epoch > 0:
                return series.np("step") / steps_per_epoch
            if series is self.train:
                return series.np("epoch")
            return series.np("epoch")
        return series.np("step")


# What each kind of event does to the history; other kinds are counted, not shown.
_ON: dict[str, Callable[[RunHistory, float, Any], None]] = {
    "train": RunHistory._train,
    "val": RunHistory._val,
    "resume": RunHistory._resume,
    "sys": RunHistory._sys,
    "log": RunHistory._log_event,
    "error": RunHistory._error,
    "status": RunHistory._status,
    "test": RunHistory._test,
    "checkpoint": RunHistory._checkpoint,
}


X_LABELS: dict[XAxis, str] = {"step": "step", "epoch": "epoch", "time": "minutes"}


def ema(y: np.ndarray, weight: float, counts: np.ndarray | None = None) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing). With `counts`, each
    value stands for that many raw points (a downsampled column) and decays accordingly."""
    if weight <= 0 or len(y) == 0:
        return y
    out = np.empty_like(y)
    acc, norm = 0.0, 0.0
    decays = np.full(len(y), weight) if counts is None else np.power(weight, counts)
    for i, (v, d) in enumerate(zip(y.tolist(), decays.tolist(), strict=True)):
        if math.isnan(v):
            out[i] = math.nan
            continue
        acc = acc * d + (1 - d) * v
        norm = norm * d + (1 - d)
        out[i] = acc / norm if norm else v
    return out


@dataclass
class Curve:
    """A downsampled curve ready for plotext: at most ~2 points per column."""

    x: list[float]
    y: list[float]
    raw_points: int


def downsample(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of y in each of `columns` equal x bins, in x order: the shape of the curve
    survives (spikes included) while plotext gets at most 2 * columns points."""
    ok = ~(np.isnan(x) | np.isnan(y))
    if not ok.all():
        x, y = x[ok], y[ok]
    n = len(x)
    if n <= 2 * columns or columns < 1:
        return x, y
    if np.any(x[1:] < x[:-1]):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    edges = np.linspace(x[0], x[-1], columns + 1)[1:-1]
    starts = np.concatenate(([0], np.searchsorted(x, edges, side="left")))
    starts = np.unique(starts)
    starts = starts[starts < n]
    ymin = np.minimum.reduceat(y, starts)
    ymax = np.maximum.reduceat(y, starts)
    ends = np.append(starts[1:], n)
    xmid = (x[starts] + x[ends - 1]) / 2
    xs = np.repeat(xmid, 2)
    ys = np.empty(2 * len(starts))
    ys[0::2], ys[1::2] = ymin, ymax
    return xs, ys


def column_means(
    x: np.ndarray, y: np.ndarray, columns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of y per x column and how many points each mean stands for."""
    ok = ~(np.isnan(x) | np.isnan(y))
    if not ok.all():
        x, y = x[ok], y[ok]
    n = len(x)
    if n <= 2 * columns or columns < 1:
        return x, y, np.ones(n)
    edges = np.linspace(x[0], x[-1], columns + 1)[1:-1]
    starts = np.unique(np.concatenate(([0], np.searchsorted(x, edges, side="left"))))
    starts = starts[starts < n]
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    sums = np.add.reduceat(y, starts)
    ends = np.append(starts[1:], n)
    return (x[starts] + x[ends - 1]) / 2, sums / counts, counts


def curve(
    x: np.ndarray, y: np.ndarray, columns: int, smoothing: float = 0.0, log_y: bool = False
) -> Curve:
    """What to hand plotext for one series: smoothed (EMA) or min/max downsampled."""
    raw = len(y)
    if log_y:
        keep = y > 0
        x, y = x[keep], y[keep]
    if smoothing > 0:
        xm, ym, counts = column_means(x, y, columns)
        xs, ys = xm, ema(ym, smoothing, counts)
    else:
        xs, ys = downsample(x, y, columns)
    return Curve(xs.tolist(), ys.tolist(), raw)
