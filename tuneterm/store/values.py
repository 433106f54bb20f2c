"""Metric values as the store keeps them, non-finite ones included.

A diverging run reports `nan`, `inf` or `-inf`, and health's `nan_loss` alert must see them, so
they are kept as floats. JSON has no such numbers: the store's files (event segments,
meta.json, a script's `metrics.jsonl`) are written and read by Python's `json`, which writes
them as the tokens `NaN`, `Infinity` and `-Infinity` and reads them back as floats. Every
reader of the store is tuneterm itself, so readers always get floats.

`decode_value` is the one conversion from whatever a script reports (a float, an int, a numpy
or 0-d torch scalar, or text such as "inf", "-Infinity", "nan", "1e309") to that float.
"""

from __future__ import annotations

import math
from typing import Any

_WORDS = {
    "nan": math.nan,
    "+nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
}


def decode_value(value: Any) -> float | None:
    """The float a reported value stands for (nan and +-inf kept), or None if it is not a
    number (a bool, a string of words, a list...)."""
    if type(value) is float:  # the common case first: log() runs every step
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _WORDS:
            return _WORDS[word]
        try:
            return float(word)  # an overflowing literal ("1e309") is inf, as it should be
        except ValueError:
            return None
    try:
        return float(value)  # ints, numpy and 0-d torch scalars
    except (TypeError, ValueError, OverflowError):
        return None


def is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
