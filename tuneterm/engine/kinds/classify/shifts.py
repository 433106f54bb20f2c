"""The synthetic domain shifts of `data.shift` and `adapt.target_shift`: deterministic
transforms of (N, 3, S, S) uint8 images, the target domains of the domain-adaptation bench."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["apply_shift", "colour_blend"]


def apply_shift(images: torch.Tensor, shift: str) -> torch.Tensor:
    """A deterministic domain shift of (N, 3, S, S) uint8 images: the target-domain variants."""
    if shift == "invert":
        return 255 - images
    if shift == "rot90":
        return torch.rot90(images, 1, dims=(2, 3)).contiguous()
    if shift == "rot180":
        return torch.rot90(images, 2, dims=(2, 3)).contiguous()
    if shift == "contrast":  # a third of the contrast on a bright background: 0..255 -> 140..225
        return (images.float() * (85 / 255) + 140).round().to(torch.uint8)
    if shift == "colour":
        return colour_blend(images)
    if shift == "texture":
        return colour_blend(images, texture=True)
    return images


def colour_blend(images: torch.Tensor, texture: bool = False) -> torch.Tensor:
    """MNIST-M's recipe on generated patches: |image - patch| per channel.

    colour: each patch a smooth dark colour field (4x4 random colours in 0..128, upsampled),
    so the digit stays bright on a dark background. texture: colours in 0..160 at two scales
    (3x3 and 8x8, upsampled, averaged), closer to MNIST-M's photo crops: a textured, colourful
    background, and a stroke whose contrast against it varies across the image and can all but
    vanish where the patch nears mid-grey. No per-channel shift and scale of the pixels (what
    BatchNorm statistics undo) maps it back. Seeded by the pixels, so the same images always
    get the same patches."""
    n, _, h, w = images.shape
    gen = torch.Generator().manual_seed(int(images.to(torch.int64).sum()) % (2**31))
    grids = ((3, 160.0), (8, 160.0)) if texture else ((4, 128.0),)
    patch = torch.stack(
        [
            F.interpolate(
                torch.rand(n, 3, k, k, generator=gen) * amp,
                size=(h, w),
                mode="bilinear",
                align_corners=False,
            )
            for k, amp in grids
        ]
    ).mean(0)
    return (images.float() - patch).abs().round().clamp(0, 255).to(torch.uint8)
