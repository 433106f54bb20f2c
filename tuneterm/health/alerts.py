"""What a run's health is made of: the alerts, and how each kind read from one event is
worded. The thresholds are the run's `[health]` section (config.HealthSection)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tuneterm.store.eventtypes import TrainEvent

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Alert:
    """One thing wrong with a run: when it was seen, how bad, what it is, what to do."""

    kind: str  # a detector's name: "nan_loss", "stalled", ...
    severity: str  # "error" or "warning"
    t: float  # unix time it was first seen
    message: str  # what is wrong, with the figures
    hint: str  # what to change

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def nan_alert(t: float, e: TrainEvent, engine: bool = True) -> Alert:
    """`engine`: tuneterm's engine trains the run, so the hint names its config keys; a run
    of the user's own script gets the same advice in the script's terms."""
    hint = (
        'lower train.lr, set train.grad_clip (e.g. 1.0), or train.precision = "bf16" / '
        '"fp32" instead of fp16, in a new run from this one\'s last checkpoint '
        '(model.init = "run:<id>")'
        if engine
        else "lower your script's learning rate, clip its gradients "
        "(torch.nn.utils.clip_grad_norm_), or train in bf16 or fp32 instead of fp16; then "
        "resume from a checkpoint from before the loss went bad"
    )
    return Alert(
        "nan_loss", "error", t, f"train loss is {e.get('loss')} at step {e.get('step')}", hint
    )


def clip(text: str, limit: int = 500) -> str:
    """`text` whole when short; else cut at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(None, 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:(") + " …"


def spike_alert(t: float, e: TrainEvent, level: float, factor: float) -> Alert:
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


def log_alert(t: float, e: Mapping[str, Any]) -> Alert | None:
    """An out-of-memory or a traceback in the run's log or error events."""
    text = str(e.get("message") or e.get("msg") or "") + "\n" + str(e.get("traceback") or "")
    low = text.lower()
    level = e.get("level", "error" if e.get("kind") == "error" else "info")
    if any(w in low for w in _OOM):
        return Alert(
            "oom",
            "error",
            t,
            clip(text.strip().splitlines()[0]),
            "a smaller train.batch_size, data.image_size or model; or fewer data.workers "
            "(host memory)",
        )
    if "traceback (most recent call last)" in low or (e.get("kind") == "error") or level == "error":
        first = text.strip().splitlines()
        return Alert(
            "traceback",
            "error",
            t,
            clip(first[-1] if first else "an error"),
            "read the run's log (tuneterm events RUN --kind error, or the TUI's log pane)",
        )
    return None
