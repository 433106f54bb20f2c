"""Freezing: linear probe, the first N stages, or gradual unfreezing from the head down.

Frozen parameters have `requires_grad = False` (no gradients, no backward through a frozen
stem, no optimizer state), and BatchNorm layers whose parameters are frozen stay in eval mode,
so their running statistics stay those of the pretrained model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from tuneterm.config import RunConfig
from tuneterm.engine.models import stages
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained


def set_trainable(model: nn.Module, names: set[str]) -> None:
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)


def freeze_bn(model: nn.Module) -> None:
    """BatchNorm whose affine parameters are frozen keeps its running statistics: eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            ps = list(m.parameters(recurse=False))
            if ps and not any(p.requires_grad for p in ps):
                m.eval()


class Freeze(Technique):
    name = "freeze"
    section = "freeze"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.stage_names: list[str] = []
        self.frozen_stages = 0

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.freeze.strategy != "none"

    def frozen_at(self, epoch: int, n_stages: int) -> int:
        """How many body stages (from the stem) are frozen during `epoch` (0-based)."""
        f = self.cfg.freeze
        if f.strategy == "linear_probe":
            return n_stages
        if f.strategy == "first_n":
            return min(f.stages, n_stages)
        return max(0, n_stages - epoch // f.every)  # gradual: the head alone first

    def _apply(self, tr: Trained) -> None:
        body = stages(tr.model, tr.head_name)
        self.stage_names = [s.name for s in body]
        self.frozen_stages = self.frozen_at(tr.state.epoch, len(body))
        frozen = {n for s in body[: self.frozen_stages] for n in s.params}
        set_trainable(tr.model, {n for n, _ in tr.model.named_parameters() if n not in frozen})

    def setup(self, tr: Trained) -> None:
        self._apply(tr)

    def epoch_start(self, tr: Trained) -> None:
        if self.cfg.freeze.strategy == "gradual":
            before = self.frozen_stages
            self._apply(tr)
            if self.frozen_stages != before:
                tr.ctx.emit(
                    "unfreeze",
                    epoch=tr.state.epoch + 1,
                    frozen_stages=self.frozen_stages,
                    trainable=tr.count_params()["trainable"],
                )
        freeze_bn(tr.model)

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "stages": self.stage_names,
            "frozen_stages": self.frozen_stages,
        }
