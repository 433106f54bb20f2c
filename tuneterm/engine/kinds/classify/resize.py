"""How an image file becomes the (3, S, S) input of a model.

torchvision runs squash every image to S x S, bilinearly (tuneterm's way since the start). A
timm or Hugging Face model brings its own way from its pretrained config: the short side to
S / crop_pct with its interpolation (bicubic for most timm models), then the centre S x S, as
its evaluation transform does. Training, the cached splits and `predict` all read images
through the same `Resize`, which the checkpoint records (`preprocess`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resize:
    interpolation: str = "bilinear"
    crop_pct: float = 0.0  # 0: squash to S x S; else the short side to S / crop_pct, centre crop

    @classmethod
    def of(cls, preprocess: dict[str, Any] | None) -> Resize:
        """From a checkpoint's or a built model's `preprocess` (empty: squash)."""
        if not preprocess:
            return SQUASH
        return cls(str(preprocess.get("interpolation", "bilinear")), float(preprocess["crop_pct"]))

    def apply(self, img: Any, size: int) -> Any:
        """A PIL image as an S x S PIL image."""
        from PIL import Image

        methods = {
            "nearest": Image.Resampling.NEAREST,
            "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC,
            "lanczos": Image.Resampling.LANCZOS,
            "box": Image.Resampling.BOX,
            "hamming": Image.Resampling.HAMMING,
        }
        method = methods.get(self.interpolation, Image.Resampling.BILINEAR)
        if self.crop_pct <= 0:
            return img.resize((size, size), method)
        short = math.floor(size / self.crop_pct)
        w, h = img.size
        scale = short / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), method)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        return img.crop((left, top, left + size, top + size))


SQUASH = Resize()
