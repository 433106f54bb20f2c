"""The run list's rows: cells, sort keys and the `/` filter. Pure functions over RunInfo."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuneterm.runs import view
from tuneterm.runs.view import STATUS_STYLE
from tuneterm.store import RunInfo

__all__ = [
    "COLUMNS",
    "SORT_KEYS",
    "STATUS_STYLE",
    "cells",
    "device_text",
    "fit_columns",
    "matches",
    "parse_filter",
    "sort_runs",
]

COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "),
    ("name", "Run"),
    ("status", "Status"),
    ("best", "Best val"),
    ("progress", "Progress"),
    ("epoch", "Epoch"),
    ("model", "Model"),
    ("data", "Data"),
    ("loss", "Loss"),
    ("elapsed", "Elapsed"),
    ("eta", "ETA"),
    ("device", "Device"),
    ("id", "ID"),
)
SORT_KEYS: tuple[str, ...] = ("created", "name", "status", "progress", "best", "loss", "elapsed")
# When the list is narrower than its columns: dropped first to last. The mark, the name and the
# status always stay; the name is cut to NAME_NARROW before any column goes.
NARROW_DROP = ("id", "eta", "device", "data", "loss", "elapsed", "epoch", "model", "progress")
NAME_NARROW = 20
GAP = 2  # one space either side of a cell


def fit_columns(widths: dict[str, int], room: int) -> dict[str, int]:
    """The columns shown in a list `room` cells wide, in order, and their widths (`widths`:
    each column's natural width). A name cut to fit gets back the room dropped columns leave."""
    shown = dict(widths)

    def total() -> int:
        return sum(shown.values()) + GAP * len(shown)

    if room <= 0 or total() <= room:
        return shown
    natural = shown["name"]
    shown["name"] = min(natural, NAME_NARROW)
    for key in NARROW_DROP:
        if total() <= room:
            break
        shown.pop(key, None)
    shown["name"] = max(shown["name"], min(natural, shown["name"] + room - total()))
    return shown


def device_text(device: str) -> str:
    """A device for a narrow cell: `cuda:0 (NVIDIA H200)` is `cuda:0`, `2 x cpu` is `2×cpu`."""
    return device.split(" (")[0].replace(" x ", "×")


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def number(v: float | None, digits: int = 4) -> str:
    if v is None or v != v:
        return ""
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 1e-3:
        return f"{v:.{max(1, digits - 2)}e}"
    return f"{v:.{digits}g}"


def fraction_done(info: RunInfo) -> float | None:
    return view.progress(info)


def bar(frac: float | None, width: int = 6) -> str:
    if frac is None:
        return ""
    eighths = " ▏▎▍▌▋▊▉█"
    filled = frac * width
    full = int(filled)
    part = eighths[int((filled - full) * 8)] if full < width else ""
    return ("█" * full + part).ljust(width) + f" {frac * 100:3.0f}%"


def elapsed(info: RunInfo, now: float) -> float | None:
    return view.elapsed(info, now)


def eta(info: RunInfo, now: float) -> float | None:
    return view.eta(info, now)


def best_text(info: RunInfo) -> str:
    """`acc 0.9123`: the label and value of the run's best metric, from its metric spec."""
    best = view.best(info)
    return best.cell if best else ""


def best_value(info: RunInfo) -> float:
    """A sort key: larger is better, whichever way the run's metric goes."""
    best = view.best(info)
    return best.rank() if best else float("-inf")


_SCRIPT_MARK = "$ "  # a run of the user's own script (a kind with a runner of its own)


def _is_script(task: str) -> bool:
    from tuneterm import tasks

    spec = tasks.find(task)
    return spec is not None and bool(spec.runner)


ALERT = "⚠"  # a run with open health alerts: its status cell ends with this and their count


def cells(info: RunInfo, marked: bool, now: float | None = None, alerts: int = 0) -> dict[str, str]:
    """The plain text of every column (styles are applied by the table)."""
    now = now or time.time()
    m = info.meta
    dev = device_text(m.device) if m and m.device else ""
    if m is not None and m.slurm:  # a run on Slurm: its job, and where it runs
        dev = " ".join(p for p in (f"job {m.slurm.get('job_id', '')}", dev) if p)
    return {
        "mark": "●" if marked else " ",
        "name": info.name or "-",
        "status": (
            f"queued #{info.queue_position}" if info.queue_position else view.status_text(info)
        )
        + (f" {ALERT}{alerts}" if alerts else ""),
        "model": (_SCRIPT_MARK if _is_script(m.task) else "") + m.model if m else "",
        "data": m.dataset if m else "",
        # a run of unknown length (a script) says where it is instead of a bar
        "progress": bar(fraction_done(info)) if view.has_length(info) else view.position(info),
        "epoch": f"{m.epoch}/{m.epochs}" if m and m.epochs else "",
        "best": best_text(info),
        "loss": number(m.last_loss) if m else "",
        "elapsed": duration(elapsed(info, now)),
        "eta": duration(eta(info, now)),
        "device": dev,
        "id": info.id,
    }


def sort_key(key: str, now: float) -> Callable[[RunInfo], Any]:
    if key == "name":
        return lambda r: r.name.lower()
    if key == "status":
        return lambda r: (r.status, r.id)
    if key == "progress":
        return lambda r: fraction_done(r) or 0.0
    if key == "best":
        return best_value
    if key == "loss":
        return lambda r: r.meta.last_loss if r.meta and r.meta.last_loss is not None else 1e30
    if key == "elapsed":
        return lambda r: elapsed(r, now) or 0.0
    return lambda r: r.id  # ids start with the creation time


def sort_runs(runs: list[RunInfo], key: str, descending: bool) -> list[RunInfo]:
    return sorted(runs, key=sort_key(key, time.time()), reverse=descending)


# -- the `/` filter ----------------------------------------------------------------------------

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Term:
    field: str  # "" = any text; "status", "tag", ...; or a config key
    op: str  # ":" for text fields, else one of _OPS
    value: str


def parse_filter(text: str) -> list[Term]:
    """`resnet status:running tag:base train.lr<0.01 epochs=5`: every term must match."""
    terms = []
    for word in text.split():
        for op in (">=", "<=", "!=", "=", ">", "<"):
            if op in word:
                key, _, value = word.partition(op)
                if key:
                    terms.append(Term(key.lower(), op, value))
                    break
        else:
            key, sep, value = word.partition(":")
            if sep and key and key.lower() in ("status", "tag", "model", "data", "name", "id"):
                terms.append(Term(key.lower(), ":", value.lower()))
            else:
                terms.append(Term("", ":", word.lower()))
    return terms


def needs_config(terms: list[Term]) -> bool:
    return any(t.op != ":" for t in terms)


def _coerce(raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(like, int | float):
        try:
            return type(like)(float(raw)) if isinstance(like, int) else float(raw)
        except ValueError:
            return raw
    if isinstance(like, list):
        return raw
    return raw.strip('"')


def _config_match(term: Term, config: Mapping[str, Any]) -> bool:
    keys = [k for k in config if k == term.field or k.endswith("." + term.field)]
    if term.field == "status":
        return False
    for key in keys:
        actual = config[key]
        if isinstance(actual, list):
            if term.op == "=" and term.value in [str(a) for a in actual]:
                return True
            continue
        want = _coerce(term.value, actual)
        try:
            if _OPS[term.op](actual, want):
                return True
        except TypeError:
            if _OPS[term.op](str(actual), term.value):
                return True
    return False


def _texts(info: RunInfo) -> dict[str, list[str]]:
    """The run's text fields a `field:value` term searches, lower-cased."""
    m = info.meta
    return {
        "status": [info.status],
        "tag": [t.lower() for t in info.label.tags],
        "model": [m.model.lower()] if m else [],
        "data": [m.dataset.lower()] if m else [],
        "name": [info.name.lower()],
        "id": [info.id],
    }


def _term_matches(
    info: RunInfo, term: Term, texts: dict[str, list[str]], config: Mapping[str, Any] | None
) -> bool:
    if term.op == ":" and term.field:  # status:run, tag:base
        return any(term.value in t for t in texts[term.field])
    if term.op == ":":  # a bare word: any text field, or the notes
        hay = [*(v for vs in texts.values() for v in vs), info.label.notes.lower()]
        return any(term.value in h for h in hay)
    if term.field == "status" and term.op in ("=", "!="):
        return (info.status == term.value.lower()) == (term.op == "=")
    return config is not None and _config_match(term, config)


def matches(info: RunInfo, terms: list[Term], config: Mapping[str, Any] | None = None) -> bool:
    """Whether the run matches every term (config terms need its flattened config)."""
    texts = _texts(info)
    return all(_term_matches(info, term, texts, config) for term in terms)
