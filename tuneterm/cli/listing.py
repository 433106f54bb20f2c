"""The `ls` table: whole values when piped; at a terminal, low-priority columns dropped first
so what is shown is never cut, and the id and status never are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tuneterm.runs import report, view
from tuneterm.store.runs import RunInfo

# (key, header), in the order shown
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "ID"),
    ("name", "NAME"),
    ("status", "STATUS"),
    ("model", "MODEL"),
    ("data", "DATA"),
    ("epoch", "EPOCH"),
    ("best", "BEST"),
    ("loss", "LOSS"),
    ("elapsed", "ELAPSED"),
    ("device", "DEVICE"),
)
# shown after STATUS when the listing holds runs of other tools (tuneterm.sources)
SOURCE = ("source", "SOURCE")


def columns_of(rows: Sequence[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    """The columns of a listing: SOURCE only where some run was written by another tool."""
    if not any(r.get("source", "tuneterm") != "tuneterm" for r in rows):
        return COLUMNS
    return (*COLUMNS[:3], SOURCE, *COLUMNS[3:])


# dropped first to last when the terminal is too narrow (the ids' short tails come first, so
# 80 columns keep EPOCH and BEST: fit_rows); id and status are never dropped
DROP_ORDER = ("device", "loss", "data", "elapsed", "model", "source", "epoch", "name", "best")
GAP = 2
NAME_CAP = 24  # a long name is cut to this before any column is dropped


def row_of(info: RunInfo, alerts: int = 0) -> dict[str, str]:
    """Every column's text for one run, whole (`alerts`: how many it has open, marked "!")."""
    m = info.meta
    place = f" #{info.queue_position}" if info.queue_position else ""
    place += f" !{alerts}" if alerts else ""
    if m is None:
        return {"id": info.id, "name": info.name, "status": "unreadable", "device": info.reason,
                "source": info.source or "tuneterm"}  # fmt: skip
    best = view.best(info)
    return {
        "id": info.id,
        "name": info.name,
        "status": f"{view.status_text(info)}{place}",
        "source": info.source or "tuneterm",
        "model": m.model,
        "data": m.dataset,
        "epoch": view.position(info) or "-",
        "best": best.cell if best else "-",
        "loss": report.fmt_metric(m.last_loss),
        "elapsed": report.fmt_duration(view.elapsed(info)),
        "device": view.where(info),
    }


@dataclass(frozen=True)
class Layout:
    keys: tuple[str, ...]  # the columns shown
    widths: dict[str, int]  # their widths; a value longer than its width is cut with "…"


def layout(rows: Sequence[dict[str, str]], width: int) -> Layout:
    """The columns that fit in `width`. A long name is cut to NAME_CAP first, then columns
    are dropped in DROP_ORDER; the name is the last to give, cut to what is left, else
    dropped. The id and the status are never cut, even when they alone are too wide."""
    shown = columns_of(rows)
    headers = dict(shown)
    widths = {k: max([len(h), *(len(r.get(k, "")) for r in rows)]) for k, h in shown}
    keys = [k for k, _ in shown]

    def total() -> int:
        return sum(widths[k] for k in keys) + GAP * (len(keys) - 1)

    if total() > width:
        widths["name"] = min(widths["name"], NAME_CAP)
    for key in DROP_ORDER:
        if total() <= width:
            break
        if key not in keys:
            continue
        if key == "name":
            spare = width - (total() - widths["name"])
            if spare >= max(len(headers["name"]), 8):
                widths["name"] = spare
                break
        keys.remove(key)
    return Layout(tuple(keys), {k: widths[k] for k in keys})


def short_ids(ids: Sequence[str]) -> dict[str, str]:
    """Each id's shortest unique tail, whole `-`-separated parts from the end (`317e`, or
    `script-317e` if another id ends in `317e`): what `show`, `stop` and the rest accept as
    the run (RunStore.resolve), in fewer columns."""
    out = {}
    for run_id in ids:
        parts = run_id.split("-")
        for n in range(1, len(parts) + 1):
            tail = "-".join(parts[-n:])
            if not any(o != run_id and o.endswith(tail) for o in ids):
                break
        out[run_id] = tail
    return out


def fit_rows(rows: Sequence[dict[str, str]], width: int) -> tuple[Layout, list[dict[str, str]]]:
    """The layout for a terminal `width`, and the rows as shown: when the ids' shortest
    unique tails leave room for more columns than the whole ids (a running run's EPOCH, its
    BEST), each id is shown as its tail. Piped output and `--json` keep whole ids
    (plain_lines)."""
    whole = layout(rows, width)
    short = short_ids([r["id"] for r in rows])
    shown = [{**r, "id": short[r["id"]]} for r in rows]
    fit = layout(shown, width)
    if len(fit.keys) > len(whole.keys):
        return fit, shown
    return whole, list(rows)


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def plain_lines(rows: Sequence[dict[str, str]]) -> list[str]:
    """Piped output: a header and one tab-separated line per run, every value whole."""
    shown = columns_of(rows)
    lines = ["\t".join(h for _, h in shown)]
    lines += ["\t".join(r.get(k, "") for k, _ in shown) for r in rows]
    return lines
