"""The formats of printed training output tuneterm reads, as a registry of recognisers.

Each recogniser knows one format (`Recogniser`: a name, where the format comes from, and
`read(line)`); `REGISTRY` holds them in the order they are tried. The first that knows a line
decides: it gives a record, or says the line is its own but carries no metric (a banner, a
batch in the middle of an evaluation), and then nothing after it reads the line. A new format is
one class and one entry here.
"""

from __future__ import annotations

import re

from tuneterm.script.formats.base import (
    NUM,
    Reading,
    Recogniser,
    Record,
    base_name,
    metric_like,
    named,
    number,
)
from tuneterm.script.formats.frameworks import (
    EPOCH_KEYS,
    NOT_CURVES,
    STEP_KEYS,
    HfTrainerDict,
    KerasProgress,
    LightningBar,
    LightningRich,
    TqdmPostfix,
)
from tuneterm.script.formats.plain import Banner, PlainPairs
from tuneterm.script.formats.projects import NanoGPT, PytorchExamples, Timm, Torchvision

__all__ = [
    "EPOCH_KEYS",
    "NOT_CURVES",
    "NUM",
    "REGISTRY",
    "STEP_KEYS",
    "Reading",
    "Recogniser",
    "Record",
    "base_name",
    "metric_like",
    "named",
    "number",
    "read_line",
    "read_patterns",
]

# Most specific first: a project's own format, then a framework's, then banners, then plain.
REGISTRY: tuple[Recogniser, ...] = (
    NanoGPT(),
    PytorchExamples(),
    Timm(),
    Torchvision(),
    HfTrainerDict(),
    LightningBar(),
    LightningRich(),
    TqdmPostfix(),
    KerasProgress(),
    Banner(),
    PlainPairs(),
)


def read_line(line: str, registry: tuple[Recogniser, ...] = REGISTRY) -> Reading | None:
    """What the first recogniser that knows `line` makes of it; None if none does."""
    for recogniser in registry:
        reading = recogniser.read(line)
        if reading is not None:
            return reading
    return None


def read_patterns(line: str, patterns: list[re.Pattern[str]]) -> Reading | None:
    """`[script] patterns`: each named group of a matching pattern is a metric of that name."""
    found: dict[str, float] = {}
    for pattern in patterns:
        m = pattern.search(line)
        if m is None:
            continue
        for name, raw in m.groupdict().items():
            value = number(raw) if raw is not None else None
            if value is not None:
                found[name] = value
    if not found:
        return None
    step = found.pop("step", None)
    epoch = found.pop("epoch", None)
    rec = Record(
        found,
        step=int(step) if step is not None and step == step else None,
        epoch=epoch,
        source="patterns",
    )
    return Reading(rec, "patterns")
