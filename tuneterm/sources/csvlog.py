"""Lightning `CSVLogger` folders: `metrics.csv` (a header, then one row per log call with the
cells of the other metrics empty) and `hparams.yaml`. Lightning rewrites the whole file with a
wider header when a new metric appears; a header line met half-way through is read as the new
header for the rows after it, and said."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.sources.points import Batch, Point, metric_name
from tuneterm.sources.readers import LineTail, mtime, register

METRICS = "metrics.csv"
HPARAMS = "hparams.yaml"


def read_flat_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level `key: value` lines (hparams.yaml, MLflow's meta.yaml), values
    as numbers where they read as numbers; nested values are left out."""
    out: dict[str, Any] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line[:1].isspace() or ":" not in line or line.startswith(("#", "-")):
            continue
        key, _, value = line.partition(":")
        value = value.strip().strip("'\"")
        if value:
            number = _number(value)
            out[key.strip()] = value if number is None else number
    return out


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


@dataclass
class CsvLogReader:
    folder: Path
    tail: LineTail = field(init=False)
    header: list[str] = field(default_factory=list)
    rows: int = 0  # data rows given, so a rewritten file is not given twice
    line: int = 0  # lines read, for messages

    def __post_init__(self) -> None:
        self.tail = LineTail(self.folder / METRICS)

    def files(self) -> list[Path]:
        return [p for p in (self.folder / METRICS, self.folder / HPARAMS) if p.is_file()]

    def poll(self) -> Batch:
        batch = Batch()
        lines = self.tail.read()
        if self.tail.restarted:  # rewritten with a wider header: skip the rows already given
            self.header, self.line, skip = [], 0, self.rows
        else:
            skip = 0
        t = mtime(self.tail.path)
        hparams = read_flat_yaml(self.folder / HPARAMS)
        if hparams:
            batch.facts["hparams"] = hparams
        index = 0
        for cells in csv.reader(lines):
            self.line += 1
            if not cells:
                continue
            if self._is_header(cells, batch):
                continue
            index += 1
            if index <= skip:
                continue
            self.rows += 1
            batch.points += self._row(cells, t)
        return batch

    def _is_header(self, cells: list[str], batch: Batch) -> bool:
        if not self.header:
            self.header = cells
            return True
        if cells == self.header or any(c and _number(c) is None for c in cells):
            if cells != self.header:
                added = [c for c in cells if c not in self.header]
                batch.problems.append(
                    f"{self.tail.path}: line {self.line}: the header changed"
                    + (f" (new columns: {', '.join(added)})" if added else "")
                    + "; the rows after it are read by the new header"
                )
                self.header = cells
            return True
        return False

    def _row(self, cells: list[str], t: float) -> list[Point]:
        values = {h: _number(c) for h, c in zip(self.header, cells, strict=False) if c}
        step = int(values.get("step") or 0)
        out = []
        for key, value in values.items():
            if value is None or key == "step":
                continue
            out.append(Point(step, t, metric_name(key), value))
        return out

    def state(self) -> dict[str, Any]:
        return {
            "offset": self.tail.offset,
            "header": self.header,
            "rows": self.rows,
            "line": self.line,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.tail.offset = int(state.get("offset") or 0)
        self.header = [str(h) for h in state.get("header") or []]
        self.rows = int(state.get("rows") or 0)
        self.line = int(state.get("line") or 0)


@register("lightning")
def _lightning(path: Path) -> CsvLogReader:
    return CsvLogReader(path)
