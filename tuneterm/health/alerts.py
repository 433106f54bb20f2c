"""What a run's health is made of: the alerts, the thresholds, and the state kept per run."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Alert:
    """One thing wrong with a run: when it was seen, how bad, what it is, what to do."""

    kind: str  # a detector's name: "nan_loss", "stalled", ...
    severity: str  # "error" or "warning"
    t: float  # unix time it was first seen
    message: str  # what is wrong, with the figures
    hint: str  # what to change

    @property
    def key(self) -> str:
        """Identifies the alert across passes, so it is notified once."""
        return f"{self.kind}@{self.t:.3f}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HealthSettings:
    """Thresholds of the detectors (the run's `[health]` config section overrides them)."""

    spike_factor: float = 5.0  # loss above this many times its smoothed level is a spike
    spike_warmup: int = 5  # train points before spikes are looked for
    stall_factor: float = 10.0  # no event for this many times the usual interval: stalled
    stall_min_s: float = 60.0  # ... and for at least this long
    gpu_idle_util: float = 5.0  # % utilisation under which a GPU is idle
    gpu_idle_s: float = 180.0  # ... for this long while the run is running
    input_bound: float = 0.3  # fraction of step time waiting for data
    input_bound_streak: int = 3  # ... this many log intervals in a row
    slowdown_factor: float = 2.0  # recent speed this many times below the run's own earlier
    slowdown_window: int = 5  # train points in each of the two medians compared
    disk_free_fraction: float = 0.05  # runs folder's disk with less free than this
    disk_free_bytes: int = 2 * 2**30  # ... or less than this, whichever is larger


_WINDOW = 64  # recent points kept per series


@dataclass
class RunHealth:
    """One run's incremental state: fed its events in order, it keeps what the detectors need
    (never the whole stream), so checking a long run costs the same as a short one."""

    settings: HealthSettings = field(default_factory=HealthSettings)
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

    def feed(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            self._one(e)

    def _one(self, e: dict[str, Any]) -> None:
        t = float(e.get("t", 0.0))
        if self.last_t is not None and t > self.last_t and e.get("kind") != "sys":
            self.gaps.append(t - self.last_t)
        if e.get("kind") != "sys":  # the sampler ticks while a hung loop stays silent
            self.last_t = t if self.last_t is None else max(self.last_t, t)
        self.first_t = t if self.first_t is None else self.first_t
        kind = e.get("kind")
        if kind == "train":
            self._train(t, e)
        elif kind == "sys":
            self._sys(t, e)
        elif kind in ("log", "error"):
            self._log(t, e)

    def _train(self, t: float, e: dict[str, Any]) -> None:
        from tuneterm.health import detectors

        s = self.settings
        loss = e.get("loss")
        if isinstance(loss, int | float) and not isinstance(loss, bool):
            if not math.isfinite(loss):
                self.nan = self.nan or detectors.nan_alert(t, e)
            else:
                level = self.loss_level
                if (
                    level is not None
                    and self.train_points >= s.spike_warmup
                    and loss > s.spike_factor * max(level, 1e-8)
                    and self.spike is None
                ):
                    self.spike = detectors.spike_alert(t, e, level, s.spike_factor)
                self.loss_level = loss if level is None else 0.8 * level + 0.2 * loss
                self.train_points += 1
        wait = e.get("data_wait")
        if isinstance(wait, int | float):
            self.wait_streak = self.wait_streak + 1 if wait >= s.input_bound else 0
            if self.wait_streak >= s.input_bound_streak and self.input_bound is None:
                self.input_bound = detectors.input_bound_alert(t, wait)
            elif self.wait_streak == 0:
                self.input_bound = None  # it recovered: the alert closes
        speed = e.get("img_s")
        if isinstance(speed, int | float) and speed > 0:
            if len(self.early_speed) < s.slowdown_window:
                self.early_speed.append(float(speed))
            self.speeds.append(float(speed))

    def _sys(self, t: float, e: dict[str, Any]) -> None:
        gpus = e.get("gpus") or []
        if not gpus:
            return
        self.gpu_seen = True
        busiest = max(float(g.get("util") or 0.0) for g in gpus)
        if busiest > self.settings.gpu_idle_util or self.gpu_busy_t is None:
            self.gpu_busy_t = t

    def _log(self, t: float, e: dict[str, Any]) -> None:
        from tuneterm.health import detectors

        alert = detectors.log_alert(t, e)
        if alert is not None and len(self.crashes) < 8:
            self.crashes.append(alert)

    def recent_speed(self) -> float | None:
        n = self.settings.slowdown_window
        if len(self.speeds) < 2 * n:
            return None
        return statistics.median(list(self.speeds)[-n:])

    def usual_gap(self) -> float | None:
        return statistics.median(self.gaps) if len(self.gaps) >= 3 else None

    def alerts(self, now: float, running: bool, alive: bool, disk: Any = None) -> list[Alert]:
        """The open alerts, given the time, whether the run is (said to be) running, whether
        its process is alive, and the runs folder's disk usage (`shutil.disk_usage`)."""
        from tuneterm.health import detectors

        out: list[Alert] = []
        for check in detectors.DETECTORS.values():
            out.extend(check(self, now, running, alive, disk))
        return out
