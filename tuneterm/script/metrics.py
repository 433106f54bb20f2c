"""Metrics from what a script reports: printed lines, or records from the API.

Printed lines, with no change to the script (used unless the run gives patterns of its own):

- `key: value` and `key=value` (tqdm postfixes such as `[..., loss=0.41, acc=0.9]` included);
- the dicts Hugging Face `Trainer` prints: `{'loss': 0.41, 'learning_rate': 5e-05, ...}`.

`[script] patterns` replaces these with regular expressions whose named groups are metrics.
A record's `loss` goes to a `train` event (with the learning rate); every other metric to a
`val` event, the curves. `MetricBook` keeps the run's metric spec as names appear.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuneterm.tasks import Metric, guess_metric

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan"
_PAIR = re.compile(
    rf"(?<![\w.\-/])([A-Za-z_][\w./\-]*)\s*[:=]\s*({_NUM})(?![\w%/.:])", re.IGNORECASE
)
# transformers 5 prints the values quoted: {'loss': '0.6876', 'epoch': '1'}
_DICT_PAIR = re.compile(
    rf"['\"]([\w./\-]+)['\"]\s*:\s*['\"]?({_NUM})['\"]?(?=\s*[,}}])", re.IGNORECASE
)
STEP_KEYS = ("step", "global_step", "iter", "iteration", "it")
EPOCH_KEYS = ("epoch", "ep")
LR_KEYS = ("lr", "learning_rate")
TRAIN_LOSS = ("loss", "train_loss")
# Figures about the run, not of the model: never curves.
_NOT_CURVES = re.compile(r"(_runtime|_per_second|total_flos|^v_num)$")


@dataclass
class Record:
    """One report: metrics at a step (None: the supervisor counts reports)."""

    metrics: dict[str, float]
    step: int | None = None
    epoch: float | None = None
    t: float | None = None


def _pairs(line: str) -> list[tuple[str, str]]:
    body = line.strip()
    if body.startswith("{") and body.endswith("}"):
        return _DICT_PAIR.findall(body)
    return _PAIR.findall(line)


def parse_line(line: str, patterns: list[re.Pattern[str]] | None = None) -> Record | None:
    """The metrics a printed line carries, or None."""
    found: dict[str, float] = {}
    if patterns:
        for pattern in patterns:
            m = pattern.search(line)
            if m is None:
                continue
            for name, raw in m.groupdict().items():
                try:
                    found[name] = float(raw)
                except (TypeError, ValueError):
                    continue
    else:
        for name, raw in _pairs(line):
            found[name.strip("'\"")] = float(raw)
    return from_mapping(found) if found else None


def from_mapping(values: Mapping[str, Any], step: Any = None, epoch: Any = None) -> Record | None:
    """A record from metric values, its step and epoch taken out of them if they are there."""
    metrics: dict[str, float] = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        low = name.lower()
        if low in STEP_KEYS and step is None:
            step = number
        elif low in EPOCH_KEYS and epoch is None:
            epoch = number
        elif not math.isinf(number) and not _NOT_CURVES.search(low):
            metrics[name] = number
    if not metrics:
        return None
    return Record(
        metrics,
        int(step) if isinstance(step, int | float) else None,
        float(epoch) if isinstance(epoch, int | float) else None,
    )


def events_of(rec: Record, step: int, epoch: float) -> list[tuple[str, dict[str, Any]]]:
    """The events of a record: (kind, fields)."""
    where: dict[str, Any] = {"step": step, "epoch": epoch}
    out: list[tuple[str, dict[str, Any]]] = []
    loss = next((rec.metrics[k] for k in TRAIN_LOSS if k in rec.metrics), None)
    lr = next((rec.metrics[k] for k in LR_KEYS if k in rec.metrics), None)
    if loss is not None:
        out.append(("train", {**where, "loss": loss, **({"lr": lr} if lr is not None else {})}))
    curves = {k: v for k, v in rec.metrics.items() if k not in TRAIN_LOSS and k not in LR_KEYS}
    if curves:
        out.append(("val", {**where, **curves}))
    return out


@dataclass
class MetricBook:
    """The run's metric spec (meta.json `metrics`), grown as metric names appear."""

    declared: dict[str, bool] = field(default_factory=dict)  # name -> higher
    best_name: str = ""  # declared with best=True
    seen: list[str] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> MetricBook:
        book = cls()
        for m in spec.get("val", []):
            book.seen.append(str(m["name"]))
            book.declared[str(m["name"])] = bool(m.get("higher", True))
        if spec.get("declared_best"):
            book.best_name = str(spec["declared_best"])
        return book

    def declare(self, name: str, higher: bool, best: bool = False) -> None:
        self.declared[name] = higher
        if best:
            self.best_name = name

    def see(self, names: list[str]) -> bool:
        """Note the curves of a record; True if one is new."""
        new = [n for n in names if n not in self.seen]
        self.seen += new
        return bool(new)

    def metric(self, name: str) -> Metric:
        guess = guess_metric(name)
        higher = self.declared.get(name, guess.higher)
        pane = "acc" if higher else "loss"
        return Metric(name, guess.label, higher=higher, pane=pane)

    def best(self) -> str:
        if self.best_name:
            return self.best_name
        evals = [n for n in self.seen if n.startswith(("eval_", "val_", "test_"))]
        for group in ([n for n in evals if self.metric(n).higher], evals, self.seen):
            if group:
                return group[0]
        return ""

    def spec(self) -> dict[str, Any]:
        best = self.best()
        return {
            "task": "script",
            "best": best,
            "higher": self.metric(best).higher if best else True,
            "val": [self.metric(n).as_dict() for n in self.seen],
            "test": [],
            "declared_best": self.best_name,
        }
