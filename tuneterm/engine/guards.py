"""What the engine does itself about two health alerts, where the choice is clear:

- a NaN or inf train loss (`health.on_nan`): "stop" fails the run at the log interval that
  shows it, before any weights that saw it are saved; "skip" drops each such batch's update
  (checking every step costs one host sync per step, so it is not the default); "ignore"
  leaves it to the alert;
- a nearly full disk (`health.disk_reserve_gb`): epoch checkpoints are paused, and the run
  says so, instead of filling the disk and failing on the next write.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Protocol

import torch

from tuneterm.config import HealthSection
from tuneterm.engine.errors import NonFiniteLoss


# What the guards need of the epoch loop (engine/epochs.py's RunContext and State meet these),
# declared here so that the loop imports the guards and not the other way round.
class Reporter(Protocol):
    ckpt_dir: Path

    def emit(self, kind: str, /, **fields: Any) -> None: ...


class Position(Protocol):
    epoch: int
    step: int
    best: dict[str, Any]


class NanGuard:
    def __init__(self, health: HealthSection, ctx: Reporter) -> None:
        self.mode, self.ctx = health.on_nan, ctx
        self.skipped = 0  # batches whose update was dropped since the last log interval

    def keep(self, loss: torch.Tensor) -> bool:
        """Whether this batch's loss may be back-propagated (always, unless mode is "skip")."""
        if self.mode != "skip":
            return True
        if bool(torch.isfinite(loss.detach()).all()):  # the per-step host sync "skip" costs
            return True
        self.skipped += 1
        return False

    def check(self, mean_loss: float, st: Position) -> None:
        """At a log interval, with the interval's mean loss (already in its "train" event)."""
        if self.skipped:
            self.ctx.emit(
                "log",
                level="warning",
                msg=f"skipped {self.skipped} batch(es) whose loss was not finite "
                f'(health.on_nan = "skip"), up to step {st.step}',
            )
            self.skipped = 0
        if self.mode != "stop" or math.isfinite(mean_loss):
            return
        last = self.ctx.ckpt_dir / "last.pt"
        kept = (
            f"checkpoints/last.pt is from before it (epoch {st.best.get('epoch', '?')} was the "
            "best so far)"
            if last.is_file()
            else "no checkpoint had been written yet (it came in the first epoch)"
        )
        raise NonFiniteLoss(
            f"train loss became {mean_loss} by step {st.step} (epoch {st.epoch + 1}); "
            f'health.on_nan = "stop": no weights after it were saved; {kept}. Try a lower '
            'train.lr, train.grad_clip = 1.0, or train.precision = "bf16"/"fp32", in a new run '
            '(model.init = "run:<this run>" starts from its checkpoint)'
        )


def disk_room(path: Path, reserve_gb: float, need: int) -> tuple[bool, str]:
    """Whether writing `need` more bytes under `path` leaves `reserve_gb` GiB free; if not,
    the sentence the run logs once."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return True, ""
    reserve = int(reserve_gb * 2**30)
    if free - need >= reserve:
        return True, ""
    return False, (
        f"disk nearly full: {free / 2**30:.1f} GiB free under {path}, health.disk_reserve_gb = "
        f"{reserve_gb:g}: epoch checkpoints are paused (the last epoch and a stop still write); "
        "free space and they resume"
    )


class Room:
    """Whether the disk has room for another epoch's checkpoints (health.disk_reserve_gb);
    says so once when it has not, and once when it has again."""

    def __init__(self, reserve_gb: float, ctx: Reporter) -> None:
        self.reserve_gb, self.ctx, self.paused = reserve_gb, ctx, False

    def ok(self, ckpt: Path) -> bool:
        need = sum(p.stat().st_size for p in ckpt.glob("*.pt") if p.is_file())
        ok, why = disk_room(ckpt, self.reserve_gb, need)
        if ok == self.paused:  # a change: say it
            self.paused = not ok
            msg = why if not ok else "disk has room again: epoch checkpoints resume"
            self.ctx.emit("log", level="warning" if not ok else "info", msg=msg)
        return ok
