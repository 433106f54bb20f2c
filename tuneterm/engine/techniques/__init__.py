"""Fine-tuning techniques, each a module behind one registry.

A technique is a `Technique` subclass (techniques/base.py) that overrides only the hooks it
needs; the trainer calls the hooks through `Techniques`, which skips the ones nobody
overrides. Adding a technique means one module here and one entry in `_registry`, not edits
spread through the loop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from tuneterm.config import RunConfig
from tuneterm.engine.techniques.base import Technique, Trained

__all__ = ["Technique", "Techniques", "Trained", "names"]


def _registry() -> dict[str, type[Technique]]:
    from tuneterm.engine.techniques.adapt import AdaBN, Cdan, Coral, Dann, Mmd
    from tuneterm.engine.techniques.distill import Distill
    from tuneterm.engine.techniques.early_stop import EarlyStop
    from tuneterm.engine.techniques.ema import Ema
    from tuneterm.engine.techniques.freeze import Freeze
    from tuneterm.engine.techniques.lora import Lora
    from tuneterm.engine.techniques.mix import Mix

    # Order matters where techniques meet: LoRA and freezing decide what trains before EMA
    # copies the model; mixing changes the batch before the losses see it.
    return {
        t.name: t
        for t in (Lora, Freeze, Ema, Mix, Distill, AdaBN, Dann, Cdan, Coral, Mmd, EarlyStop)
    }


def names() -> list[str]:
    return list(_registry())


class Techniques:
    """The techniques a config asks for, called in registry order."""

    def __init__(self, cfg: RunConfig) -> None:
        self.items = [cls(cfg) for cls in _registry().values() if cls.wanted(cfg)]
        base = Technique.__dict__

        def using(hook: str) -> list[Technique]:
            # getattr, not the class __dict__: a hook may be overridden in a shared base class
            return [t for t in self.items if getattr(type(t), hook) is not base[hook]]

        self._batch = using("batch")
        self._loss = using("loss")
        self._step_end = using("step_end")

    def get(self, name: str) -> Technique | None:
        return next((t for t in self.items if t.name == name), None)

    def summary(self) -> dict[str, Any]:
        return {t.name: t.summary() for t in self.items}

    def setup(self, tr: Trained) -> None:
        for t in self.items:
            t.setup(tr)

    def param_groups(self, tr: Trained) -> list[dict[str, Any]]:
        return [g for t in self.items for g in t.param_groups(tr)]

    def epoch_start(self, tr: Trained) -> None:
        for t in self.items:
            t.epoch_start(tr)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for t in self._batch:
            x, y = t.batch(x, y)
        return x, y

    def loss(self, tr: Trained, x: Tensor, y: Tensor, logits: Tensor, loss: Tensor) -> Tensor:
        for t in self._loss:
            loss = t.loss(tr, x, y, logits, loss)
        return loss

    def step_end(self, tr: Trained) -> None:
        for t in self._step_end:
            t.step_end(tr)

    def epoch_end(self, tr: Trained, val: dict[str, Any]) -> bool:
        return any([t.epoch_end(tr, val) for t in self.items])

    def finish(self, tr: Trained) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.items:
            out.update(t.finish(tr))
        return out

    def eval_model(self, model: nn.Module) -> nn.Module:
        for t in self.items:
            model = t.eval_model(model)
        return model

    def checkpoint_weights(self, weights: dict[str, Any]) -> dict[str, Any]:
        for t in self.items:
            weights = t.checkpoint_weights(weights)
        return weights

    def checkpoint_extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.items:
            out.update(t.checkpoint_extra())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {t.name: s for t in self.items if (s := t.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for t in self.items:
            if t.name in state:
                t.load_state_dict(state[t.name])
