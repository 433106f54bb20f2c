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


# The implementations an optimizer step can take, fastest first: one fused kernel over every
# parameter; the multi-tensor ("foreach") kernels; torch's per-parameter Python loop.
IMPLEMENTATIONS = ("fused", "foreach", "for-loop")


def fused_devices() -> frozenset[str]:
    """The device types the installed torch has fused optimizer kernels for (its own list)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # an older torch: fused on CUDA only
        return frozenset({"cuda"})
    return frozenset(_get_fused_kernels_supported_devices())


def _constructs(name: str, device: torch.device, impl: str) -> bool:
    """Whether torch takes `impl` for optimizer `name` on `device` (some of torch's fused
    kernels are missing for some optimizer and device pairs: it refuses at construction)."""
    probe = [torch.nn.Parameter(torch.zeros(1, device=device))]
    try:
        OPTIMIZERS[name]([{"params": probe}], TrainSection.model_validate({}), {impl: True})
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def choose_impl(name: str, device: torch.device, fused: bool = True) -> str:
    """The one place that picks how an optimizer step runs: fused wherever the installed
    torch has a fused kernel for `name` on `device` (the CPU included; `speed.fused_optimizer
    = false` opts out), else foreach, else torch's per-parameter loop."""
    if fused and device.type in fused_devices() and _constructs(name, device, "fused"):
        return "fused"
    if _constructs(name, device, "foreach"):
        return "foreach"
    return "for-loop"


def _impl_kwargs(impl: str) -> dict[str, Any]:
    return {} if impl == "for-loop" else {impl: True}


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
    """The optimizer over `param_groups` (plus `extra` groups), in the fastest implementation
    the device has (`choose_impl`); `impl_of` says which one it took."""
    groups = param_groups(model, t, head_name, include_frozen) + list(extra or [])
    impl = choose_impl(t.optimizer, device, fused)
    return OPTIMIZERS[t.optimizer](groups, t, _impl_kwargs(impl))


def impl_of(opt: torch.optim.Optimizer) -> str:
    """How `opt` steps: "fused", "foreach" or "for-loop" (read from its own settings)."""
    d = opt.defaults
    return "fused" if d.get("fused") else "foreach" if d.get("foreach") else "for-loop"


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
