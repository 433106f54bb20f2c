"""Optimizers and per-step LR schedules by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tuneterm.config import TrainSection


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on weights only: norms and biases (1-d tensors) get none."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups: list[dict[str, object]] = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _fast_kwargs(device: torch.device) -> dict[str, Any]:
    # Fused kernels on CUDA; the default foreach implementation elsewhere.
    return {"fused": True} if device.type == "cuda" else {}


OPTIMIZERS: dict[
    str, Callable[[list[dict[str, object]], TrainSection, torch.device], torch.optim.Optimizer]
] = {
    "sgd": lambda g, t, d: torch.optim.SGD(
        g, lr=t.lr, momentum=t.momentum, nesterov=t.momentum > 0, **_fast_kwargs(d)
    ),
    "adam": lambda g, t, d: torch.optim.Adam(g, lr=t.lr, **_fast_kwargs(d)),
    "adamw": lambda g, t, d: torch.optim.AdamW(g, lr=t.lr, **_fast_kwargs(d)),
}


def make_optimizer(
    model: nn.Module, t: TrainSection, device: torch.device
) -> torch.optim.Optimizer:
    return OPTIMIZERS[t.optimizer](param_groups(model, t.weight_decay), t, device)


def _multiplier(kind: str, total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if kind == "step":  # x0.1 at half and at three quarters of training
            return 0.1 ** ((t >= 0.5) + (t >= 0.75))
        return 1.0

    return f


def make_scheduler(
    opt: torch.optim.Optimizer, t: TrainSection, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    if t.scheduler == "onecycle":
        pct = min(0.5, max(0.05, t.warmup_steps / max(1, total_steps))) if t.warmup_steps else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=t.lr,
            total_steps=max(2, total_steps),
            pct_start=pct,
            cycle_momentum=t.optimizer == "sgd",
        )
    return torch.optim.lr_scheduler.LambdaLR(
        opt, _multiplier(t.scheduler, total_steps, t.warmup_steps)
    )
