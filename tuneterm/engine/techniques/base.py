"""What a fine-tuning technique is: the hooks it may override, and what of the run it may touch.

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
from torch import Tensor, nn

from tuneterm.config import RunConfig

if TYPE_CHECKING:
    from tuneterm.engine.epochs import RunContext, State
    from tuneterm.engine.kinddata import Data


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

    def loss(self, tr: Trained, x: Tensor, y: Tensor, logits: Tensor, loss: Tensor) -> Tensor:
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
