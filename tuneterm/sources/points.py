"""What every reader hands on: named values at a step, and the problems it met."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Tags whose meaning is certain, mapped onto tuneterm's names (tuneterm.script.metrics):
# the train loss is `loss`, the learning rate `lr`, the epoch the `epoch` of its step.
EXACT = {
    "train/loss": "loss",
    "train_loss": "loss",
    "loss": "loss",
    "train/learning_rate": "lr",
    "learning_rate": "lr",
    "lr": "lr",
    "lr-adam": "lr",
    "lr-sgd": "lr",
    "lr-adamw": "lr",
    "train/epoch": "epoch",
    "epoch": "epoch",
}
# `eval/loss` -> `eval_loss`, `val/acc` -> `val_acc`, `test/f1` -> `test_f1`, `train/x` -> `train_x`
PREFIXES = ("eval", "val", "validation", "test", "train")
SKIP = frozenset({"hp_metric"})  # Lightning's placeholder for the hparams plugin
_UNSAFE = re.compile(r"[^\w./-]+")


@functools.lru_cache(maxsize=4096)
def metric_name(tag: str) -> str:
    """tuneterm's name for a tag, where the meaning is certain; else the tag itself."""
    low = tag.strip()
    if low in EXACT:
        return EXACT[low]
    head, sep, rest = low.partition("/")
    if sep and head in PREFIXES and rest and "/" not in rest:
        head = "val" if head == "validation" else head
        return f"{head}_{rest}"
    return _UNSAFE.sub("_", low) or "value"


class Point(NamedTuple):
    """One value: `name` is tuneterm's name (metric_name) of the tag. (A tuple: a run may
    hold millions.)"""

    step: int
    t: float  # wall time it was written
    name: str
    value: float


@dataclass
class Batch:
    """What one poll of a reader found: new points in the order written, problems (each naming
    its file), and facts about the run as a whole (HF's best_metric, a total of steps)."""

    points: list[Point] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, other: Batch) -> None:
        self.points += other.points
        self.problems += other.problems
        self.facts.update(other.facts)
