"""Optimizers and per-step LR schedules by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tuneterm.config import TrainSection


def param_groups(
    model: nn.Module,
    t: TrainSection,
    head_name: str = "",
    include_frozen: bool = False,
) -> list[dict[str, Any]]:
    """Optimizer groups: per stage lr (layer-wise decay from head to stem, a separate head lr)
    x weight decay on weights only (norms and biases, 1-d tensors, get none).

    Frozen parameters are left out, so they never get optimizer state, unless they may be
    unfrozen later (`include_frozen`, gradual unfreezing); without gradients they still get
    no state, since optimizers skip parameters whose grad is None."""
    from tuneterm.engine.models import stages

    named = dict(model.named_parameters())
    lr_of: dict[str, float] = {}
    if head_name:
        body = stages(model, head_name)
        for i, stage in enumerate(body):
            for n in stage.params:
                lr_of[n] = t.lr * t.layer_decay ** (len(body) - i)
        for n in named:
            if n.startswith(head_name + "."):
                lr_of[n] = t.head_lr or t.lr
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for n, p in named.items():
        if not (p.requires_grad or include_frozen):
            continue
        groups.setdefault((lr_of.get(n, t.lr), p.ndim >= 2), []).append(p)
    return [
        {"params": ps, "lr": lr, "weight_decay": t.weight_decay if decay else 0.0}
        for (lr, decay), ps in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1]))
    ]


def _fast_kwargs(device: torch.device, fused: bool) -> dict[str, Any]:
    # Fused kernels on CUDA (speed.fused_optimizer); otherwise torch's default, which is the
    # foreach (multi-tensor) implementation on CUDA.
    return {"fused": True} if fused and device.type == "cuda" else {}


OPTIMIZERS: dict[
    str, Callable[[list[dict[str, object]], TrainSection, dict[str, Any]], torch.optim.Optimizer]
] = {
    "sgd": lambda g, t, k: torch.optim.SGD(
        g, lr=t.lr, momentum=t.momentum, nesterov=t.momentum > 0, **k
    ),
    "adam": lambda g, t, k: torch.optim.Adam(g, lr=t.lr, **k),
    "adamw": lambda g, t, k: torch.optim.AdamW(g, lr=t.lr, **k),
}


def make_optimizer(
    model: nn.Module,
    t: TrainSection,
    device: torch.device,
    head_name: str = "",
    include_frozen: bool = False,
    extra: list[dict[str, Any]] | None = None,
    fused: bool = True,
) -> torch.optim.Optimizer:
    groups = param_groups(model, t, head_name, include_frozen) + list(extra or [])
    return OPTIMIZERS[t.optimizer](groups, t, _fast_kwargs(device, fused))


def _multiplier(kind: str, total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if kind == "step":  # x0.1 at half and at three quarters of training
            return 0.1 ** ((t >= 0.5) + (t >= 0.75))
        if kind == "anneal":  # Ganin & Lempitsky's DANN schedule: lr / (1 + 10 p) ** 0.75
            return float((1.0 + 10.0 * t) ** -0.75)
        return 1.0

    return f


def make_scheduler(
    opt: torch.optim.Optimizer, t: TrainSection, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    if t.scheduler == "onecycle":
        pct = min(0.5, max(0.05, t.warmup_steps / max(1, total_steps))) if t.warmup_steps else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=[g["lr"] for g in opt.param_groups],
            total_steps=max(2, total_steps),
            pct_start=pct,
            cycle_momentum=t.optimizer == "sgd",
        )
    return torch.optim.lr_scheduler.LambdaLR(
        opt, _multiplier(t.scheduler, total_steps, t.warmup_steps)
    )
