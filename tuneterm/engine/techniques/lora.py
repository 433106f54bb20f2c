"""LoRA adapters (peft) on every Linear and Conv2d layer of the body; the body stays frozen.

Only adapter and head weights go into checkpoints (`partial`), with where the backbone came
from, so many runs can share one backbone: `models.from_checkpoint` rebuilds the backbone and
loads the adapters onto it (`model.init = "run:<id>"` and distillation teachers use it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from tuneterm.config import RunConfig
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained

ADAPTER_KEY = "lora_"


def targets(model: nn.Module, head_name: str) -> list[str]:
    """Names of the Linear and Conv2d layers outside the head, or the ones a model names
    (`lora_targets()`, e.g. text models: the attention projections)."""
    own = getattr(model, "lora_targets", None)
    if callable(own):
        return list(own())
    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv2d)
        and not (n == head_name or n.startswith(head_name + "."))
    ]


def inject(model: nn.Module, head_name: str, spec: dict[str, Any]) -> nn.Module:
    """Add LoRA adapters in place; afterwards only adapters and the head are trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=int(spec["rank"]),
        lora_alpha=spec["alpha"],
        lora_dropout=float(spec["dropout"]),
        target_modules=targets(model, head_name),
        bias="none",
    )
    inject_adapter_in_model(config, model)
    for n, p in model.named_parameters():
        p.requires_grad_(ADAPTER_KEY in n or n.startswith(head_name + "."))
    return model


class Lora(Technique):
    name = "lora"
    section = "lora"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.head_name = ""
        self.adapter_params = 0

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.lora.enabled

    def setup(self, tr: Trained) -> None:
        self.head_name = tr.head_name
        self.backbone_init = str(tr.init) if tr.init else ""
        inject(tr.model, tr.head_name, self.cfg.lora.model_dump())
        self.adapter_params = sum(
            p.numel() for n, p in tr.model.named_parameters() if ADAPTER_KEY in n
        )
        # Frozen BatchNorm keeps the backbone's statistics (the backbone is shared).
        from tuneterm.engine.techniques.freeze import freeze_bn

        self._freeze_bn = freeze_bn

    def epoch_start(self, tr: Trained) -> None:
        self._freeze_bn(tr.model)

    def checkpoint_weights(self, weights: dict[str, Any]) -> dict[str, Any]:
        head = self.head_name + "."
        return {k: v for k, v in weights.items() if ADAPTER_KEY in k or k.startswith(head)}

    def checkpoint_extra(self) -> dict[str, Any]:
        return {
            "lora": self.cfg.lora.model_dump(),
            "partial": True,
            "backbone": {"weights": self.cfg.model.weights, "init": self.backbone_init},
        }

    backbone_init = ""  # the resolved model.init path, if any

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "adapter_params": self.adapter_params}
