"""An image classifier as one deployable module (`tuneterm export-model`): float32
[N, 3, S, S] RGB in [0, 1], normalised inside, to softmax probabilities [N, K]."""

# No `from __future__ import annotations`: TorchScript reads these annotations.
from pathlib import Path
from typing import List  # noqa: UP035 - TorchScript reads these annotations

import torch
from torch import nn

from tuneterm.engine import checkpoint
from tuneterm.engine.exportable import Wrapped


class ClassifyExport(nn.Module):
    """float32 [N, 3, S, S] RGB in [0, 1] -> class probabilities [N, K]."""

    def __init__(self, model: nn.Module, mean: List[float], std: List[float]) -> None:  # noqa: UP006
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean, self.std
        assert isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)
        return self.model((image - mean) / std).softmax(1)


def wrap(best: Path) -> Wrapped:
    """The classifier of a run's best.pt (the spec's `exporter`)."""
    from tuneterm.engine.kinds.classify.models import from_checkpoint

    ck = checkpoint.load(best)
    size = int(ck["image_size"])
    meta = {
        "task": "classify",
        "classes": list(ck["classes"]),
        "image_size": size,
        "mean": list(ck["mean"]),
        "std": list(ck["std"]),
        "input": f"image: float32 [N, 3, {size}, {size}], RGB in [0, 1]; normalised inside",
        "outputs": "probs [N, K] softmax over classes",
    }
    if ck.get("preprocess"):  # timm/hf: the model's own interpolation and crop
        pre = ck["preprocess"]
        meta.update(
            source=pre["source"], interpolation=pre["interpolation"], crop_pct=pre["crop_pct"]
        )
    module = ClassifyExport(from_checkpoint(best).eval(), ck["mean"], ck["std"]).eval()
    axes = {"image": {0: "batch"}, "probs": {0: "batch"}}
    return Wrapped(module, torch.rand(1, 3, size, size), meta, ["probs"], axes)
