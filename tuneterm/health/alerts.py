"""What a run's health is made of: the alerts (and how each kind is worded) and the
thresholds of the detectors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


def nan_alert(t: float, e: dict[str, Any]) -> Alert:
    return Alert(
        "nan_loss",
        "error",
        t,
        f"train loss is {e.get('loss')} at step {e.get('step')}",
        'lower train.lr, set train.grad_clip (e.g. 1.0), or train.precision = "bf16" / '
        '"fp32" instead of fp16, in a new run from this one\'s last checkpoint '
        '(model.init = "run:<id>")',
    )


def spike_alert(t: float, e: dict[str, Any], level: float, factor: float) -> Alert:
    loss = float(e["loss"])
    return Alert(
        "loss_spike",
        "warning",
        t,
        f"train loss jumped to {loss:.4g} at step {e.get('step')}, {loss / level:.1f}x its "
        f"smoothed level {level:.4g} (health.spike_factor = {factor:g})",
        "a too-high learning rate or a bad batch: lower train.lr or set train.grad_clip",
    )


def input_bound_alert(t: float, wait: float) -> Alert:
    return Alert(
        "input_bound",
        "warning",
        t,
        f"input-bound: {wait:.0%} of step time waiting for data",
        "raise data.workers or data.cache_gb, or use a lighter data.augment",
    )


_OOM = ("out of memory", "outofmemoryerror", "cannot allocate memory", "memoryerror")


def log_alert(t: float, e: dict[str, Any]) -> Alert | None:
    """An out-of-memory or a traceback in the run's log or error events."""
    text = str(e.get("message") or e.get("msg") or "") + "\n" + str(e.get("traceback") or "")
    low = text.lower()
    level = e.get("level", "error" if e.get("kind") == "error" else "info")
    if any(w in low for w in _OOM):
        return Alert(
            "oom",
            "error",
            t,
            text.strip().splitlines()[0][:300],
            "a smaller train.batch_size, data.image_size or model; or fewer data.workers "
            "(host memory)",
        )
    if "traceback (most recent call last)" in low or (e.get("kind") == "error") or level == "error":
        first = text.strip().splitlines()
        return Alert(
            "traceback",
            "error",
            t,
            (first[-1] if first else "an error")[:300],
            "read the run's log (tuneterm events RUN --kind error, or the TUI's log pane)",
        )
    return None


def settings_from(health: Any) -> HealthSettings:
    """The thresholds of a run from its config's `[health]` section (a HealthSection)."""
    return HealthSettings(
        spike_factor=health.spike_factor,
        stall_factor=health.stall_factor,
        stall_min_s=health.stall_seconds,
        gpu_idle_s=health.gpu_idle_minutes * 60,
        slowdown_factor=health.slowdown_factor,
        disk_free_bytes=int(health.disk_reserve_gb * 2**30),
    )
