"""What a recogniser gives back, the protocol it follows, and the pieces they share: numbers as
training code prints them, and one spelling for each metric name."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

Phase = Literal["train", "eval", ""]

# A printed number: thousands separators (1,234.5), exponents, and the non-finite spellings
# Python, numpy and torch print (inf, -inf, nan). `1,2` (a decimal comma, or a list) is not a
# number here: the negative look-ahead leaves it to be skipped rather than read as 1.
NUM = (
    r"[-+]?(?:inf(?:inity)?|nan"
    r"|\d{1,3}(?:,\d{3})+(?:\.\d*)?(?:[eE][-+]?\d+)?"
    r"|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?!,\d)"
)
_NUM_RE = re.compile(rf"^{NUM}$", re.IGNORECASE)


def number(raw: str) -> float | None:
    """A printed number as a float: `1,234.5` -> 1234.5, `1e309` -> inf, `nan` -> nan; None
    for anything else (`1,2`, `3.2s`)."""
    text = raw.strip()
    if not _NUM_RE.match(text):
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


@dataclass
class Record:
    """One report: metrics at a step.

    `step` None: the supervisor counts reports, except for an `eval` record, which belongs to
    the step training had reached (an eval line rarely prints one)."""

    metrics: dict[str, float]
    step: int | None = None
    epoch: float | None = None
    t: float | None = None
    phase: Phase = ""
    source: str = ""  # the recogniser (or "patterns", "api") that read it
    same_step: bool = False  # more of the report before it (a bar's metrics on their own lines)

    @property
    def at_last_step(self) -> bool:
        """Without a step of its own, it belongs to the step training had reached."""
        return self.step is None and (self.phase == "eval" or self.same_step)

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in self.metrics.values())


@dataclass
class Reading:
    """What a recogniser made of a line it knows: a record, or `None` for a line of its format
    that carries no metric (a banner, a batch in the middle of an evaluation)."""

    record: Record | None
    source: str = ""
    notes: list[str] = field(default_factory=list)


class Recogniser(Protocol):
    """One format of printed training output. `read` returns None for a line that is not of
    its format, so the next recogniser in the registry gets it."""

    name: str
    project: str  # where the format comes from, for `tuneterm parse` and the docs

    def read(self, line: str) -> Reading | None: ...


# -- one name for one metric ---------------------------------------------------------------------
# `accuracy` stays as it is: the HF Trainer's printed dicts and its callback must give one name.
_SYNONYMS = {
    "acc@1": "acc1",
    "top1": "acc1",
    "top-1": "acc1",
    "top_1": "acc1",
    "acc@5": "acc5",
    "top5": "acc5",
    "top-5": "acc5",
    "top_5": "acc5",
    "learning_rate": "lr",
    "average_loss": "loss",
    "avg_loss": "loss",
}
_PREFIXES = ("train_", "val_", "eval_", "test_")


def base_name(name: str) -> str:
    """`Loss` -> loss, `Acc@1` -> acc1, `top-5` -> acc5, `Average loss` -> loss."""
    low = re.sub(r"\s+", "_", name.strip().strip("'\"").lower())
    for prefix in _PREFIXES:
        if low.startswith(prefix) and low[len(prefix) :] in _SYNONYMS:
            return prefix + _SYNONYMS[low[len(prefix) :]]
    return _SYNONYMS.get(low, low)


def named(name: str, phase: Phase) -> str:
    """The metric's name in the run: eval metrics start with `val_` (or keep their own eval
    prefix), train metrics other than the loss and learning rate start with `train_`."""
    base = base_name(name)
    if base.startswith(_PREFIXES):
        return base
    if phase == "eval":
        return "val_" + base
    if phase == "train" and base not in ("loss", "lr"):
        return "train_" + base
    return base


# Words a metric's name is made of. A plain `key: value` is a metric only when its key has one
# of them: `n_layer = 2` and `crop_pct: 0.875` are settings, not curves.
_METRIC_WORDS = re.compile(
    r"^(loss|acc\d*|accuracy|err|error|f1|precision|prec\d*|recall|auc|auroc|ap\d*|map\d*|miou|iou|dice"
    r"|bleu|rouge\w*|ppl|perplexity|mse|mae|rmse|nll|kl|wer|cer|score|reward|lr|grad_norm|psnr"
    r"|ssim|r2|mcc|em|exact_match|bpc|bpb|top\d|metric|objective)$"
)


def metric_like(name: str) -> bool:
    parts = base_name(name).replace(".", "_").replace("/", "_").replace("-", "_").split("_")
    return any(_METRIC_WORDS.match(p) for p in parts if p)
