"""MLflow's file store (`mlruns/<experiment>/<run>/`), by its documented layout: `meta.yaml`
(run_name, status, start_time, end_time), `metrics/<key>` (one `timestamp value step` line per
logged value; a key with `/` is a sub-folder), `params/<key>`, `tags/<key>`."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.sources.csvlog import read_flat_yaml
from tuneterm.sources.points import Batch, Point, metric_name
from tuneterm.sources.readers import LineTail, register

META = "meta.yaml"
# MLflow's run status (the file store writes its number), as tuneterm says it
STATUS = {
    "3": "completed",
    "4": "failed",
    "5": "stopped",
    "FINISHED": "completed",
    "FAILED": "failed",
    "KILLED": "stopped",
}


def read_params(folder: Path) -> dict[str, Any]:
    """params/<key>: one value per file."""
    out: dict[str, Any] = {}
    root = folder / "params"
    for where, _, names in os.walk(root):
        for n in names:
            path = Path(where) / n
            with contextlib.suppress(OSError):
                out[str(path.relative_to(root))] = path.read_text(encoding="utf-8").strip()
    return out


def is_run(folder: Path) -> bool:
    return (folder / META).is_file() and (folder / "metrics").is_dir()


@dataclass
class MlflowReader:
    folder: Path
    tails: dict[str, LineTail] = field(default_factory=dict)

    def _metric_files(self) -> list[Path]:
        root = self.folder / "metrics"
        out: list[Path] = []
        for where, dirs, names in os.walk(root):
            dirs.sort()
            out += sorted(Path(where) / n for n in names)
        return out

    def files(self) -> list[Path]:
        return [self.folder / META, *self._metric_files()]

    def poll(self) -> Batch:
        batch = Batch()
        root = self.folder / "metrics"
        found: list[Point] = []
        for path in self._metric_files():
            key = str(path.relative_to(root))
            tail = self.tails.setdefault(str(path), LineTail(path))
            for line in tail.read():
                parts = line.split()
                try:
                    ms, value, step = float(parts[0]), float(parts[1]), int(parts[2])
                except (IndexError, ValueError):
                    batch.problems.append(f"{path}: line {line!r} is not `time value step`")
                    continue
                found.append(Point(step, ms / 1000.0, metric_name(key), value))
        found.sort(key=lambda p: (p.t, p.step))  # one log_metrics call: the same time
        batch.points = found
        meta = read_flat_yaml(self.folder / META)
        params = read_params(self.folder)
        if params:
            batch.facts["hparams"] = params
        if meta.get("run_name"):
            batch.facts["name"] = str(meta["run_name"])
        status = str(meta.get("status", "")).removesuffix(".0")
        if status in STATUS:
            batch.facts["status"] = STATUS[status]
        return batch

    def state(self) -> dict[str, Any]:
        return {p: t.offset for p, t in self.tails.items()}

    def restore(self, state: dict[str, Any]) -> None:
        for p, offset in state.items():
            self.tails[p] = LineTail(Path(p), int(offset))


@register("mlflow")
def _mlflow(path: Path) -> MlflowReader:
    return MlflowReader(path)
