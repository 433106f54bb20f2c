"""Metrics from what a script reports: printed lines, or records from the API.

Printed lines are read by the recognisers of `tuneterm.script.formats` (nanoGPT, pytorch/examples,
timm, torchvision, the HF Trainer's dicts, Lightning's and tqdm's bars, Keras, plain `key: value`),
unless the run gives `[script] patterns` of its own: regular expressions whose named groups are
metrics. A record's `loss` goes to a `train` event (with the learning rate); every other metric
to a `val` event, the curves. `MetricBook` keeps the run's metric spec as names appear, and
`run_metric` is the one rule that says which metric ranks the run.

Non-finite values (`inf`, `nan`, an overflowing `1e309`) are kept: events store them as JSON's
`Infinity`/`NaN`, which tuneterm's readers and the health checks read back as floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuneterm.script.formats import (
    EPOCH_KEYS,
    NOT_CURVES,
    STEP_KEYS,
    Record,
    base_name,
    metric_like,
    read_line,
    read_patterns,
)
from tuneterm.tasks import Metric, guess_metric

__all__ = ["MetricBook", "Record", "events_of", "from_mapping", "parse_line", "run_metric"]

LR_KEYS = ("lr", "learning_rate")
TRAIN_LOSS = ("loss", "train_loss")
EVAL_PREFIXES = ("val_", "eval_", "test_")


def parse_line(line: str, patterns: list[re.Pattern[str]] | None = None) -> Record | None:
    """The metrics a printed line carries, or None."""
    reading = read_patterns(line, patterns) if patterns else read_line(line)
    if reading is None or reading.record is None or not reading.record.metrics:
        return None
    return reading.record


def from_mapping(values: Mapping[str, Any], step: Any = None, epoch: Any = None) -> Record | None:
    """A record from metric values (the API, the integrations), its step and epoch taken out of
    them where the caller did not pass them, and dropped where they repeat what it passed (HF's
    logs carry the epoch). A `step` or `epoch` value that differs from the one passed is the
    caller's own metric, and the event rule keeps it as `user_step`/`user_epoch`."""
    metrics: dict[str, float] = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        low = name.lower()
        if low in STEP_KEYS and (step is None or number == step):
            step = number
        elif low in EPOCH_KEYS and (epoch is None or number == epoch):
            epoch = number
        elif not NOT_CURVES.search(low):
            metrics[name] = number
    if not metrics:
        return None
    return Record(
        metrics,
        int(step) if isinstance(step, int | float) and math.isfinite(step) else None,
        float(epoch) if isinstance(epoch, int | float) else None,
        source="api",
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


# -- the one rule ---------------------------------------------------------------------------------
def _is_eval(name: str) -> bool:
    return name.startswith(EVAL_PREFIXES) and "train" not in name


def run_metric(
    names: Iterable[str],
    higher: Mapping[str, bool] | None = None,
    configured: str = "",
    declared: str = "",
) -> str:
    """The metric that ranks a script run, the same for `ls`, `show`, `sweep-best`, compare and
    the TUI: the user's `[script] metric`, else the one the script declared best, else the
    first accuracy-like eval metric (val_acc, val_acc1, eval_accuracy...), else any other eval
    metric where higher is better, else an eval loss, else the train loss. Only a name with a
    metric word in it (loss, acc, f1...) is ever picked by this rule; "" when none qualifies."""
    if configured:
        return configured
    if declared:
        return declared
    seen = list(dict.fromkeys(names))
    up = higher or {}

    def goes_up(n: str) -> bool:
        return up.get(n, guess_metric(n).higher)

    evals = [n for n in seen if _is_eval(n) and metric_like(n)]
    tiers = (
        [n for n in evals if goes_up(n) and "acc" in base_name(n)],
        [n for n in evals if goes_up(n)],
        [n for n in evals if "loss" in n],
        evals,
        [n for n in seen if n in TRAIN_LOSS],
    )
    for tier in tiers:
        if tier:
            # val_ first: eval_ and test_ names are the same measure under another prefix
            return sorted(tier, key=lambda n: not n.startswith("val_"))[0]
    return ""


@dataclass
class MetricBook:
    """The run's metric spec (meta.json `metrics`), grown as metric names appear, and the best
    value seen of each metric, so that the run's best follows the chosen metric."""

    declared: dict[str, bool] = field(default_factory=dict)  # name -> higher
    best_name: str = ""  # declared with best=True
    configured: str = ""  # [script] metric
    seen: list[str] = field(default_factory=list)
    has_loss: bool = False
    bests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], configured: str = "", best: Mapping[str, Any] | None = None
    ) -> MetricBook:
        """The book of a run's meta.json (`metrics`, and `best` so a resume keeps it)."""
        book = cls(configured=configured)
        if best and isinstance(best.get("value"), float) and best.get("metric"):
            book.bests[str(best["metric"])] = dict(best)
        for m in spec.get("val", []):
            book.seen.append(str(m["name"]))
            book.declared[str(m["name"])] = bool(m.get("higher", True))
        if spec.get("declared_best"):
            book.best_name = str(spec["declared_best"])
        book.has_loss = spec.get("best") in TRAIN_LOSS
        return book

    def declare(self, name: str, higher: bool, best: bool = False) -> None:
        self.declared[name] = higher
        if best:
            self.best_name = name

    def see(self, names: list[str]) -> bool:
        """Note the names of a record; True if the spec changes."""
        before = (len(self.seen), self.has_loss)
        self.has_loss = self.has_loss or any(n in TRAIN_LOSS for n in names)
        new = [n for n in names if n not in self.seen and n not in (*TRAIN_LOSS, *LR_KEYS)]
        self.seen += new
        return (len(self.seen), self.has_loss) != before

    def metric(self, name: str) -> Metric:
        guess = guess_metric(name)
        higher = self.declared.get(name, guess.higher)
        pane = "acc" if higher else "loss"
        return Metric(name, guess.label, higher=higher, pane=pane)

    def best(self) -> str:
        names = [*self.seen, *(["loss"] if self.has_loss else [])]
        higher = {n: self.metric(n).higher for n in names}
        return run_metric(names, higher, self.configured, self.best_name)

    def offer(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Note an event's values; the run's best (meta.json `best`) of the chosen metric."""
        for name, value in fields.items():
            if name in ("step", "epoch", "lr", "off") or not isinstance(value, float):
                continue
            if not math.isfinite(value):
                continue  # a NaN or inf is an alert (health), never the run's best
            key = "loss" if name in TRAIN_LOSS else name
            old = self.bests.get(key, {}).get("value")
            if old is None or self.metric(key).better(value, float(old)):
                extra = {k: v for k, v in fields.items() if k != "off"}
                if isinstance(extra.get("epoch"), float) and math.isfinite(extra["epoch"]):
                    extra["epoch"] = int(extra["epoch"])  # the epoch it was reached in
                self.bests[key] = {**extra, "metric": key, "value": value}
        return dict(self.bests.get(self.best(), {}))

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
