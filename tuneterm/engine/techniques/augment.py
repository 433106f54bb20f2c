"""Training augmentation presets (torchvision.transforms.v2), on uint8 (3, S, S) images.

`describe(cfg)` returns the resolved pipeline as text, batch mixing included (the TUI shows it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneterm.config import RunConfig


def _light(size: int) -> list[Any]:
    from torchvision.transforms import v2

    return [v2.RandomCrop(size, padding=max(1, size // 8)), v2.RandomHorizontalFlip()]


def _randaugment(size: int) -> list[Any]:
    from torchvision.transforms import v2

    return [*_light(size), v2.RandAugment(num_ops=2, magnitude=9)]


def _trivialaugment(size: int) -> list[Any]:
    from torchvision.transforms import v2

    return [*_light(size), v2.TrivialAugmentWide()]


def _autoaugment(size: int) -> list[Any]:
    from torchvision.transforms import v2

    return [*_light(size), v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)]


PRESETS: dict[str, Callable[[int], list[Any]]] = {
    "none": lambda size: [],
    "light": _light,
    "randaugment": _randaugment,
    "trivialaugment": _trivialaugment,
    "autoaugment": _autoaugment,
}


def transform_for(preset: str, size: int) -> Any:
    """The per-image transform for a preset, or None when there is nothing to do."""
    steps = PRESETS[preset](size)
    if not steps:
        return None
    from torchvision.transforms import v2

    return v2.Compose(steps)


def describe(cfg: RunConfig) -> str:
    """The resolved training pipeline, one step a line."""
    d, m = cfg.data, cfg.mix
    lines = [f"decode -> uint8 3x{d.image_size}x{d.image_size} (cached in RAM when it fits)"]
    if d.shift != "none":
        lines.append(f"shift: {d.shift}")
    lines += [f"per image: {step!r}" for step in PRESETS[d.augment](d.image_size)]
    lines.append("to device, float, normalise with the model's mean/std")
    if m.mixup > 0 or m.cutmix > 0:
        parts = [f"MixUp(alpha={m.mixup})"] if m.mixup > 0 else []
        parts += [f"CutMix(alpha={m.cutmix})"] if m.cutmix > 0 else []
        lines.append(f"per batch (p={m.prob}): one of " + ", ".join(parts))
    return "\n".join(lines)
