"""Early stopping: stop when a val metric has not improved by `min_delta` for `patience` epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneterm.config import RunConfig
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained


class EarlyStop(Technique):
    name = "early_stop"
    section = "early_stop"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.best: float | None = None
        self.bad_epochs = 0
        self.stopped_epoch = 0

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.early_stop.enabled

    def improved(self, value: float) -> bool:
        e = self.cfg.early_stop
        if self.best is None:
            return True
        if e.mode == "min":
            return value < self.best - e.min_delta
        return value > self.best + e.min_delta

    def epoch_end(self, tr: Trained, val: dict[str, Any]) -> bool:
        e = self.cfg.early_stop
        value = float(val[e.metric.removeprefix("val_")])  # acc, loss, or f1 (text runs)
        if self.improved(value):
            self.best, self.bad_epochs = value, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs < e.patience:
            return False
        self.stopped_epoch = tr.state.epoch
        tr.ctx.emit(
            "early_stop", epoch=tr.state.epoch, metric=e.metric, best=self.best, patience=e.patience
        )
        return True

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "stopped_epoch": self.stopped_epoch}

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
