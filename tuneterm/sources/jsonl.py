"""JSON-lines logs: LLaMA-Factory's `trainer_log.jsonl` (`current_steps`, `total_steps`,
`loss`, `lr`, `epoch`, ...), one object per line, read from a byte offset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.sources.points import Batch, Point, metric_name
from tuneterm.sources.readers import LineTail, mtime, register

LOG = "trainer_log.jsonl"
STEP_KEYS = ("current_steps", "step", "global_step")
NOT_CURVES = frozenset({"total_steps", "percentage", "elapsed_time", "remaining_time"})


@dataclass
class JsonLinesReader:
    folder: Path
    tail: LineTail = field(init=False)
    line: int = 0

    def __post_init__(self) -> None:
        self.tail = LineTail(self.folder / LOG)

    def files(self) -> list[Path]:
        return [self.tail.path] if self.tail.path.is_file() else []

    def poll(self) -> Batch:
        batch = Batch()
        lines = self.tail.read()
        if self.tail.restarted:
            self.line = 0
        t = mtime(self.tail.path)
        for text in lines:
            self.line += 1
            try:
                row = json.loads(text)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                if text.strip():
                    batch.problems.append(f"{self.tail.path}: line {self.line}: {exc}; skipped")
                continue
            self._row(row, t, batch)
        return batch

    def _row(self, row: dict[str, Any], t: float, batch: Batch) -> None:
        step = next((row[k] for k in STEP_KEYS if isinstance(row.get(k), int)), 0)
        if isinstance(row.get("total_steps"), int):
            batch.facts["total_steps"] = row["total_steps"]
        for key, value in row.items():
            if key in NOT_CURVES or key in STEP_KEYS or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                batch.points.append(Point(int(step), t, metric_name(key), float(value)))

    def state(self) -> dict[str, Any]:
        return {"offset": self.tail.offset, "line": self.line}

    def restore(self, state: dict[str, Any]) -> None:
        self.tail.offset = int(state.get("offset") or 0)
        self.line = int(state.get("line") or 0)


@register("jsonl")
def _jsonl(path: Path) -> JsonLinesReader:
    return JsonLinesReader(path)
