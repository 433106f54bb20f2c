"""The losses of feature-level domain adaptation, on plain tensors (used by techniques/adapt.py).

- `grad_reverse`: DANN's gradient-reversal layer (Ganin & Lempitsky 2015), with
  `reversal_coefficient`, the schedule 2 / (1 + exp(-10 p)) - 1 over training progress p.
- `condition`: CDAN's input to the domain classifier (Long et al. 2018), the features times
  the class probabilities: their outer product, or its randomized form.
- `coral_loss`: Deep CORAL (Sun & Saenko 2016), the distance between the feature covariances.
- `mmd_loss`: a multi-kernel Gaussian MMD (Long et al. 2015, DAN), biased estimate.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by -scale on the way back."""
    out: torch.Tensor = GradReverse.apply(x, scale)
    return out


def reversal_coefficient(p: float) -> float:
    """Ganin's ramp of the reversal strength, 0 at the start of training, ~1 at the end."""
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def condition(
    feats: torch.Tensor,
    probs: torch.Tensor,
    proj: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """CDAN's multilinear map of (n, d) features and (n, C) probabilities: the (n, d*C) outer
    product, or with `proj` = (R_f (d, k), R_g (C, k)) the randomized map
    (f R_f) * (g R_g) / sqrt(k), which keeps k columns when d*C is too wide."""
    if proj is None:
        return (feats.unsqueeze(2) * probs.unsqueeze(1)).flatten(1)
    rf, rg = proj
    return (feats @ rf) * (probs @ rg) / rf.shape[1] ** 0.5


def coral_loss(src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """||C_s - C_t||_F^2 / (4 d^2) for (n, d) features (Deep CORAL's loss)."""
    d = src.shape[1]

    def cov(f: torch.Tensor) -> torch.Tensor:
        f = f - f.mean(0, keepdim=True)
        return f.T @ f / max(1, len(f) - 1)

    return (cov(src) - cov(tgt)).pow(2).sum() / (4 * d * d)


def mmd_loss(
    src: torch.Tensor, tgt: torch.Tensor, scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
) -> torch.Tensor:
    """Squared MMD between (n, d) and (m, d) features under a sum of Gaussian kernels whose
    bandwidths are `scales` times the mean pairwise squared distance (detached)."""
    x = torch.cat([src, tgt])
    d2 = torch.cdist(x, x).pow(2)
    base = d2.detach().sum() / max(1, len(x) * (len(x) - 1))
    k = sum(torch.exp(-d2 / (base * s + 1e-8)) for s in scales)
    assert isinstance(k, torch.Tensor)
    n = len(src)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()
