"""The embedded data sets: scikit-learn's digits (read without importing it) and generated
shapes, with no download."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from tuneterm.engine.data import sklearn_digits
from tuneterm.tasks.classify import SHAPES


def _to_rgb(gray: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 3, size, size) uint8."""
    x = gray.float().unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def load_digits(size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """scikit-learn's digits: 1,797 real 8x8 handwritten digits, shipped inside the package."""
    images, target = sklearn_digits()
    gray = torch.from_numpy((images * 16).clip(0, 255).astype(np.uint8))
    return (
        _to_rgb(gray, size),
        torch.from_numpy(target),
        [str(i) for i in range(10)],
    )


def load_shapes(
    size: int, per_class: int = 200, seed: int = 1234
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Generated coloured shapes at random positions and scales on noisy backgrounds."""
    rng = np.random.default_rng(seed)
    base = 32
    yy, xx = np.mgrid[0:base, 0:base].astype(np.float32)
    images, labels = [], []
    for label, shape in enumerate(SHAPES):
        for _ in range(per_class):
            r = rng.uniform(6, 12)
            cy, cx = rng.uniform(r, base - r, size=2)
            dy, dx = yy - cy, xx - cx
            if shape == "circle":
                mask = dy**2 + dx**2 <= r**2
            elif shape == "square":
                mask = (abs(dy) <= r * 0.8) & (abs(dx) <= r * 0.8)
            elif shape == "triangle":
                mask = (dy <= r * 0.7) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
            elif shape == "cross":
                mask = ((abs(dy) <= r / 4) & (abs(dx) <= r)) | ((abs(dx) <= r / 4) & (abs(dy) <= r))
            elif shape == "ring":
                d2 = dy**2 + dx**2
                mask = (d2 <= r**2) & (d2 >= (r * 0.55) ** 2)
            else:  # bar
                mask = (abs(dy) <= r / 4) & (abs(dx) <= r)
            bg = rng.uniform(0, 120, size=3)
            fg = rng.uniform(135, 255, size=3)
            img = bg[:, None, None] + rng.normal(0, 12, size=(3, base, base))
            img = np.where(mask[None], fg[:, None, None], img)
            images.append(img.clip(0, 255).astype(np.uint8))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8), torch.tensor(labels), list(SHAPES)


EMBEDDED: dict[str, Callable[[int], tuple[torch.Tensor, torch.Tensor, list[str]]]] = {
    "digits": load_digits,
    "shapes": load_shapes,
}
