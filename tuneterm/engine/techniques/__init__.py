"""Fine-tuning techniques, each a module behind one registry.

A technique is a `Technique` subclass that overrides only the hooks it needs; the trainer calls
the hooks through `Techniques`, which skips the ones nobody overrides. Adding a technique means
one module here and one entry in `REGISTRY`, not edits spread through the loop.

Hooks get the run as a `Trained` (what a technique may touch), in the order the trainer\ncalls them:
    setup(tr)            model built and on its device; before the optimizer exists
    param_groups(tr)     extra optimizer groups (e.g. a domain classifier)
    epoch_start(tr)      after model.train(), before the first batch of an epoch
    batch(x, y)          per batch, on the device (MixUp/CutMix)
    loss(tr, x, y, logits, loss)   per batch, under autocast (distillation, DANN)
    step_end(tr)         after each optimizer step (EMA)
    epoch_end(tr, val)   after validation; True asks the trainer to stop (early stopping)
    finish(tr)           after the test; returns results for meta.final (domain adaptation)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from tuneterm.config import RunConfig

if TYPE_CHECKING:
    from tuneterm.engine.epochs import RunContext, State
    from tuneterm.engine.kinds import Data


class Trained(Protocol):
    """What a technique may touch of the run it joins (engine/trainer.py's Trainer is one):
    read the config, data and progress, change the model in place, emit events, evaluate."""

    @property
    def cfg(self) -> RunConfig: ...
    @property
    def ctx(self) -> RunContext: ...
    @property
    def data(self) -> Data: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def model(self) -> nn.Module: ...  # the plain module: evaluated, checkpointed, averaged
    @property
    def head_name(self) -> str: ...
    @property
    def init(self) -> Path | None: ...  # the checkpoint the model started from (model.init)
    @property
    def teacher(self) -> nn.Module | None: ...  # a distillation teacher the kind loaded
    @property
    def state(self) -> State: ...
    @property
    def total_steps(self) -> int: ...

    def to_device(self, batch: Any) -> tuple[Any, Any]: ...
    def evaluate(
        self, split: Any, full: bool = False, model: nn.Module | None = None
    ) -> dict[str, Any]: ...
    def count_params(self) -> dict[str, Any]: ...


class Technique:
    name: ClassVar[str] = ""  # the registry name
    section: ClassVar[str] = ""  # the config section it reads

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """What meta.json records under `techniques.<name>`."""
        return dict(getattr(self.cfg, self.section).model_dump())

    def setup(self, tr: Trained) -> None:
        pass

    def param_groups(self, tr: Trained) -> list[dict[str, Any]]:
        return []

    def epoch_start(self, tr: Trained) -> None:
        pass

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def loss(
        self,
        tr: Trained,
        x: torch.Tensor,
        y: torch.Tensor,
        logits: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        return loss

    def step_end(self, tr: Trained) -> None:
        pass

    def epoch_end(self, tr: Trained, val: dict[str, Any]) -> bool:
        return False

    def finish(self, tr: Trained) -> dict[str, Any]:
        return {}

    # optional: the model to evaluate and checkpoint, checkpoint contents, resumable state
    def eval_model(self, model: nn.Module) -> nn.Module:
        return model

    def checkpoint_weights(self, weights: dict[str, Any]) -> dict[str, Any]:
        return weights

    def checkpoint_extra(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _registry() -> dict[str, type[Technique]]:
    from tuneterm.engine.techniques.adapt import AdaBN, Dann
    from tuneterm.engine.techniques.distill import Distill
    from tuneterm.engine.techniques.early_stop import EarlyStop
    from tuneterm.engine.techniques.ema import Ema
    from tuneterm.engine.techniques.freeze import Freeze
    from tuneterm.engine.techniques.lora import Lora
    from tuneterm.engine.techniques.mix import Mix

    # Order matters where techniques meet: LoRA and freezing decide what trains before EMA
    # copies the model; mixing changes the batch before the losses see it.
    return {t.name: t for t in (Lora, Freeze, Ema, Mix, Distill, AdaBN, Dann, EarlyStop)}


def names() -> list[str]:
    return list(_registry())


class Techniques:
    """The techniques a config asks for, called in registry order."""

    def __init__(self, cfg: RunConfig) -> None:
        self.items = [cls(cfg) for cls in _registry().values() if cls.wanted(cfg)]
        base = Technique.__dict__

        def using(hook: str) -> list[Technique]:
            return [
                t for t in self.items if type(t).__dict__.get(hook, base[hook]) is not base[hook]
            ]

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

    def loss(
        self,
        tr: Trained,
        x: torch.Tensor,
        y: torch.Tensor,
        logits: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
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
