"""The state kept per run: fed its events in order, it keeps what the detectors need."""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuneterm.config.operations import HealthSection
from tuneterm.health.alerts import (
    Alert,
    input_bound_alert,
    log_alert,
    nan_alert,
    spike_alert,
)
from tuneterm.slurm.states import JobState
from tuneterm.store.eventtypes import SysEvent, TrainEvent

_WINDOW = 64  # recent points kept per series


@dataclass
class RunHealth:
    """One run's incremental state: fed its events in order, it keeps what the detectors need
    (never the whole stream), so checking a long run costs the same as a short one."""

    settings: HealthSection = field(default_factory=lambda: HealthSection.model_validate({}))
    engine: bool = True  # trained by tuneterm's engine (hints may name its config keys)
    first_t: float | None = None
    last_t: float | None = None
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    nan: Alert | None = None
    spike: Alert | None = None
    loss_level: float | None = None  # smoothed train loss (EMA)
    train_points: int = 0
    wait_streak: int = 0
    input_bound: Alert | None = None
    speeds: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    early_speed: list[float] = field(default_factory=list)  # the run's first speeds, kept
    gpu_busy_t: float | None = None  # last time a run's GPU was above the idle threshold
    gpu_seen: bool = False
    crashes: list[Alert] = field(default_factory=list)  # OOM and tracebacks from the log
    job: JobState | None = None  # a run on Slurm: its job as last listed (set by the watcher)
    job_since: float = 0.0  # when the job was submitted

    def feed(self, events: Iterable[Mapping[str, Any]]) -> None:
        for e in events:
            self._one(e)

    def _one(self, e: Mapping[str, Any]) -> None:
        t = float(e.get("t", 0.0))
        kind = str(e.get("kind"))
        if kind != "sys":  # the sampler ticks while a hung loop stays silent
            if self.last_t is not None and t > self.last_t:
                self.gaps.append(t - self.last_t)
            self.last_t = t if self.last_t is None else max(self.last_t, t)
        self.first_t = t if self.first_t is None else self.first_t
        on = _ON.get(kind)
        if on is not None:
            on(self, t, e)

    def _train(self, t: float, e: TrainEvent) -> None:
        s = self.settings
        loss = e.get("loss")
        if isinstance(loss, int | float) and not isinstance(loss, bool):
            if not math.isfinite(loss):
                self.nan = self.nan or nan_alert(t, e, self.engine)
            else:
                level = self.loss_level
                if (
                    level is not None
                    and self.train_points >= s.spike_warmup
                    and loss > s.spike_factor * max(level, 1e-8)
                    and self.spike is None
                ):
                    self.spike = spike_alert(t, e, level, s.spike_factor)
                self.loss_level = loss if level is None else 0.8 * level + 0.2 * loss
                self.train_points += 1
        wait = e.get("data_wait")
        if isinstance(wait, int | float):
            self.wait_streak = self.wait_streak + 1 if wait >= s.input_bound else 0
            if self.wait_streak >= s.input_bound_streak and self.input_bound is None:
                self.input_bound = input_bound_alert(t, wait)
            elif self.wait_streak == 0:
                self.input_bound = None  # it recovered: the alert closes
        speed = e.get("examples_s")
        if isinstance(speed, int | float) and speed > 0:
            if len(self.early_speed) < s.slowdown_window:
                self.early_speed.append(float(speed))
            self.speeds.append(float(speed))

    def _sys(self, t: float, e: SysEvent) -> None:
        gpus = e.get("gpus") or []
        if not gpus:
            return
        self.gpu_seen = True
        busiest = max(float(g.get("util") or 0.0) for g in gpus)
        if busiest > self.settings.gpu_idle_util or self.gpu_busy_t is None:
            self.gpu_busy_t = t

    def _log(self, t: float, e: Mapping[str, Any]) -> None:
        alert = log_alert(t, e)
        if alert is not None and len(self.crashes) < 8:
            self.crashes.append(alert)

    def recent_speed(self) -> float | None:
        n = self.settings.slowdown_window
        if len(self.speeds) < 2 * n:
            return None
        return statistics.median(list(self.speeds)[-n:])

    def usual_gap(self) -> float | None:
        return statistics.median(self.gaps) if len(self.gaps) >= 3 else None


# What each kind of event feeds; every kind but `sys` also counts as a sign of life.
_ON: dict[str, Callable[[RunHealth, float, Any], None]] = {
    "train": RunHealth._train,
    "sys": RunHealth._sys,
    "log": RunHealth._log,
    "error": RunHealth._log,
}
