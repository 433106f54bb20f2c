"""Hugging Face Trainer folders: `trainer_state.json` (at the top once training ends, in each
`checkpoint-*/` before) gives `log_history`, `best_metric` and `best_model_checkpoint`. Where
the Trainer also reported to TensorBoard (`runs/*/events.out.tfevents.*`), the curves come from
those event files, which grow live; trainer_state.json is rewritten only at a checkpoint."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.sources.points import Batch, Point, metric_name
from tuneterm.sources.readers import mtime, register
from tuneterm.sources.tb import TensorBoardReader

STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# The summary the Trainer logs once at the end: not a curve (its `train_loss` is the mean)
FINAL_KEYS = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "train_loss",
)
NOT_VALUES = ("step", "epoch")


def state_files(folder: Path) -> list[Path]:
    """trainer_state.json at the top and in each checkpoint-N/, newest step last."""
    found: list[tuple[int, Path]] = []
    if (folder / STATE).is_file():
        found.append((1 << 62, folder / STATE))
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for n in names:
        m = _CHECKPOINT.match(n)
        if m and (folder / n / STATE).is_file():
            found.append((int(m.group(1)), folder / n / STATE))
    return [p for _, p in sorted(found)]


def _facts(state: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "best_metric",
        "best_model_checkpoint",
        "max_steps",
        "num_train_epochs",
        "global_step",
        "epoch",
    )
    return {f"hf_{k}": state[k] for k in keys if state.get(k) is not None}


@dataclass
class TrainerReader:
    folder: Path
    tb: TensorBoardReader = field(init=False)
    seen: int = 0  # log_history entries given (when the curves come from it)
    last: str = ""  # the trainer_state.json read last, and its (size, mtime)
    stamp: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.tb = TensorBoardReader(self.folder, recursive=True)

    def files(self) -> list[Path]:
        return [*state_files(self.folder), *self.tb.files()]

    def poll(self) -> Batch:
        batch = self.tb.poll() if self.tb.files() else Batch()
        # the newest trainer_state.json that reads whole; one caught mid-write is said, and an
        # older checkpoint's stands in until the next poll
        for path in reversed(state_files(self.folder)):
            if self._read_state(path, batch, curves=not self.tb.known):
                break
        return batch

    def _read_state(self, path: Path, batch: Batch, curves: bool) -> bool:
        """Read one trainer_state.json if it changed; False if it cannot be read."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        stamp = (st.st_size, st.st_mtime_ns)
        if str(path) == self.last and stamp == self.stamp:
            return True
        try:
            state = json.loads(path.read_bytes())
            history = state.get("log_history") or []
            if not isinstance(history, list):
                raise ValueError("log_history is not a list")
        except (OSError, ValueError, AttributeError) as exc:
            # Mid-write, or damaged: keep what was read, try again at the next poll
            batch.problems.append(f"{path}: cannot be read ({exc}); the rest of the run is shown")
            return False
        self.last, self.stamp = str(path), stamp
        batch.facts["resolved"] = str(path)  # read whole now: a mid-write is over
        batch.facts.update(_facts(state))
        if curves:
            t = mtime(path)
            for entry in history[self.seen :]:
                if isinstance(entry, dict) and not any(k in entry for k in FINAL_KEYS[:4]):
                    batch.points += _entry_points(entry, t)
            self.seen = max(self.seen, len(history))
        return True

    def state(self) -> dict[str, Any]:
        return {"tb": self.tb.state(), "seen": self.seen}

    def restore(self, state: dict[str, Any]) -> None:
        self.tb.restore(state.get("tb") or {})
        self.seen = int(state.get("seen") or 0)


def _entry_points(entry: dict[str, Any], t: float) -> list[Point]:
    step = int(entry.get("step") or 0)
    out = []
    if isinstance(entry.get("epoch"), int | float):
        out.append(Point(step, t, "epoch", float(entry["epoch"])))
    for key, value in entry.items():
        if key in NOT_VALUES or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out.append(Point(step, t, metric_name(key), float(value)))
    return out


@register("hf")
def _hf(path: Path) -> TrainerReader:
    return TrainerReader(path)
