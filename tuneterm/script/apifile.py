"""The API's metrics file (`RUN/script/metrics.jsonl`, written by `tuneterm.log()`): one line
as a record, and where the supervisor's reading of it got to."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tuneterm.script import metrics as mx
from tuneterm.store.events import list_segments, segment_path
from tuneterm.store.text import printable
from tuneterm.store.values import decode_value, is_finite


def api_record(item: dict[str, Any]) -> mx.Record | None:
    """A `tuneterm.log()` line as a record: names cleaned of control characters, values read
    by `decode_value` (inf, -inf and nan kept: health's nan_loss alert reads them)."""
    raw = item.get("m")
    if not isinstance(raw, dict):
        return None
    values: dict[str, float] = {}
    for key, value in raw.items():
        name, number = printable(str(key), tabs=False).strip(), decode_value(value)
        if name and number is not None:
            values[name] = number
    step, epoch = item.get("step"), item.get("epoch")
    rec = mx.from_mapping({k: v for k, v in values.items() if not math.isinf(v)}, step, epoch)
    infinite = {
        k: v
        for k, v in values.items()
        if math.isinf(v) and k.lower() not in (*mx.STEP_KEYS, *mx.EPOCH_KEYS)
    }
    if not infinite:
        return rec
    if rec is None:
        rec = mx.Record(
            {},
            int(step) if isinstance(step, int | float) and is_finite(step) else None,
            float(epoch) if isinstance(epoch, int | float) and is_finite(epoch) else None,
        )
    rec.metrics.update(infinite)
    return rec


def last_offset(events_dir: Path) -> int:
    """Where the API's metrics file was read up to: the `off` of the newest event that has
    one. Events are flushed after the cursor moves, so a kill -9 re-reads, never skips."""
    for index in reversed(list_segments(events_dir)):
        try:
            data = json.loads(segment_path(events_dir, index).read_bytes())
        except (OSError, ValueError):
            continue
        docs = data.get("events", {}) if isinstance(data, dict) else {}
        for key in sorted(docs, key=int, reverse=True):
            off = docs[key].get("off")
            if isinstance(off, int):
                return off
    return 0
