"""MixUp and CutMix per batch (torchvision.transforms.v2), on the device where the batch is."""

from __future__ import annotations

from typing import Any

import torch

from tuneterm.config import RunConfig
from tuneterm.engine.techniques.base import Technique, Trained


class Mix(Technique):
    name = "mix"
    section = "mix"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.num_classes = 0
        self.mixers: list[Any] = []
        self.gen = torch.Generator().manual_seed(cfg.train.seed + 7)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}  # a resumed run draws the same mixes

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.mix.mixup > 0 or cfg.mix.cutmix > 0

    def setup(self, tr: Trained) -> None:
        from torchvision.transforms import v2

        k = len(tr.data.classes)
        m = self.cfg.mix
        if m.mixup > 0:
            self.mixers.append(v2.MixUp(alpha=m.mixup, num_classes=k))
        if m.cutmix > 0:
            self.mixers.append(v2.CutMix(alpha=m.cutmix, num_classes=k))

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The choice is drawn on the host from a seeded generator: no device sync.
        r = torch.rand(2, generator=self.gen).tolist()
        if r[0] >= self.cfg.mix.prob:
            return x, y
        mixer = self.mixers[int(r[1] * len(self.mixers))]
        out: tuple[torch.Tensor, torch.Tensor] = mixer(x, y)
        return out
