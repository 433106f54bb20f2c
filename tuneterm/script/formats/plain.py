"""The last resorts: lines that are settings or banners (never metrics), and plain `key: value`
/ `key=value` lines that look like progress."""

from __future__ import annotations

import re

from tuneterm.script.formats.base import NUM, Reading, Record, metric_like, named, number
from tuneterm.script.formats.frameworks import EPOCH_KEYS, NOT_CURVES, STEP_KEYS

_BANNERS = re.compile(
    r"(Overriding\b"  # nanoGPT's configurator
    r"|tokens per iteration"
    r"|Modules in (train|eval) mode"
    r"|(Created|Using|Loading|Saving|saving|Creating|Initiali[sz]ing|Scheduled)\b"
    r"|\w++\("  # the repr of the run's arguments: Namespace(...), TrainingArguments(...)
    r"|Learning rate \(|found vocab_size|\s*\|"  # table rows of a model summary
    r")",
    re.IGNORECASE,
)
# Anywhere in the line: parameter counts and summaries (Lightning, timm, nanoGPT).
_COUNTS = re.compile(r"\b(param(eter)?s?|FLOPs)\b", re.IGNORECASE)


class Banner:
    """Settings and start-up banners: `Overriding: n_layer = 2`, `param count:4924027`,
    `tokens per iteration will be: 512`, `Trainable params: 2.2 K`, `Namespace(lr=0.1, ...)`,
    `Created SGD (sgd) optimizer: lr: 0.0125, ...`. Numbers there configure the run."""

    name = "banner"
    project = "settings and banners"

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        return Reading(None, self.name) if _BANNERS.match(text) or _COUNTS.search(text) else None


_PAIR = re.compile(
    rf"(?<![\w.\-/])([A-Za-z_][\w./\-]*+)\s*+[:=]\s*({NUM})(?![\w%/.:])", re.IGNORECASE
)
# `loss 0.52`, `acc 0.9`: a metric word and its number with no sign between (a key that is not a
# metric word is never read this way: `took 12.5 seconds`)
_SPACED = re.compile(rf"(?<![\w.\-/])([A-Za-z_][\w./\-]*+)\s++({NUM})(?![\w%/.:])", re.IGNORECASE)
# Where the line sits, written as words: `step 12:`, `iter 40,`, `Epoch 3/10`, `epoch 2 step 5:`
_WHERE = re.compile(r"(?<![\w.\-])(step|iter|iteration|epoch)\s++(\d++)(?:\s*/\s*\d++)?\b", re.I)
_JSON_MEMBER = re.compile(r"^\s*\"[^\"]+\"\s*:\s*[^,]*,?\s*$")  # one member of a printed dict
MAX_PROSE_WORDS = 4  # words outside the pairs: more, and the line is a sentence


class PlainPairs:
    """`epoch: 1 acc: 0.5`, `step=2 val_f1=0.25`, `step 12: loss 0.52 acc 0.9`, `Epoch 3/10
    loss 0.4`: pairs of a known metric word (loss, acc, f1, lr...) or a step or epoch. A pair
    whose key is not a metric word is left out; a line with none, or that is mostly prose, is
    no metric line."""

    name = "plain"
    project = "key: value / key=value"

    def read(self, line: str) -> Reading | None:
        if _JSON_MEMBER.match(line):
            return None
        where = _WHERE.findall(line)
        rest = _WHERE.sub(" ", line)
        pairs = _PAIR.findall(rest)
        rest = _PAIR.sub(" ", rest)
        spaced = [(k, v) for k, v in _SPACED.findall(rest) if metric_like(k)]
        if not pairs and not spaced:
            return None
        prose = _SPACED.sub(" ", rest)
        if len(re.findall(r"[A-Za-z]{2,}", prose)) > MAX_PROSE_WORDS:
            return None
        step: int | None = None
        epoch: float | None = None
        values: dict[str, float] = {}
        for k, raw in [*where, *pairs, *spaced]:
            value = number(raw)
            low = k.lower()
            if value is None or NOT_CURVES.search(low):
                continue
            if low in STEP_KEYS and step is None and value == value:
                step = int(value)
            elif low in EPOCH_KEYS and epoch is None:
                epoch = value
            elif metric_like(k):
                values[named(k, "")] = value
        if not values:
            return None
        return Reading(Record(values, step=step, epoch=epoch, source=self.name), self.name)
