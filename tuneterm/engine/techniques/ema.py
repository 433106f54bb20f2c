"""An exponential moving average of the weights (torch.optim.swa_utils), evaluated each epoch;
with `ema.keep` it picks, and is, the best checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from tuneterm.config import RunConfig
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained


class Ema(Technique):
    name = "ema"
    section = "ema"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.avg: AveragedModel | None = None

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.ema.enabled

    def setup(self, tr: Trained) -> None:
        self.avg = AveragedModel(
            tr.model, multi_avg_fn=get_ema_multi_avg_fn(self.cfg.ema.decay), use_buffers=True
        )
        self.avg.requires_grad_(False)

    def step_end(self, tr: Trained) -> None:
        assert self.avg is not None
        self.avg.update_parameters(tr.model)  # on the device, no host sync

    @property
    def module(self) -> nn.Module:
        assert self.avg is not None
        return self.avg.module

    def eval_model(self, model: nn.Module) -> nn.Module:
        return self.module if self.cfg.ema.keep else model

    def epoch_end(self, tr: Trained, val: dict[str, Any]) -> bool:
        # The model the checkpoint does not use is evaluated too, so both can be compared.
        other = tr.model if self.cfg.ema.keep else self.module
        res = tr.evaluate(tr.data.val, model=other)
        val["extra"][("model" if self.cfg.ema.keep else "ema") + "_val_acc"] = res["acc"]
        return False

    def state_dict(self) -> dict[str, Any]:
        assert self.avg is not None
        return {"avg": self.avg.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.avg is not None
        self.avg.load_state_dict(state["avg"])
