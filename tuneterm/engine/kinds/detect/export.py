"""A detector as one deployable module (`tuneterm export-model`): float32 [3, H, W] RGB in
[0, 1], any size, resized and normalised inside, to boxes [n, 4] (xyxy pixels of the input),
labels [n] (1..K: `classes[label - 1]`) and scores [n]."""

# No `from __future__ import annotations`: TorchScript reads these annotations.
from pathlib import Path
from typing import Tuple  # noqa: UP035 - TorchScript reads these annotations

import torch
from torch import nn

from tuneterm.engine.exportable import Wrapped


class DetectExport(nn.Module):
    """float32 [3, H, W] RGB in [0, 1] -> boxes [n, 4] (xyxy px), labels [n], scores [n]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # noqa: UP006
        # scripted detectors return (losses, detections); eager ones the detections
        dets = self.model([image])[1] if torch.jit.is_scripting() else self.model([image])
        d = dets[0]
        return d["boxes"], d["labels"], d["scores"]


def wrap(best: Path) -> Wrapped:
    """The detector of a run's best.pt (the spec's `exporter`)."""
    from tuneterm.engine.kinds.detect.models import from_checkpoint

    model, info = from_checkpoint(best)
    meta = {
        "task": "detect",
        "classes": list(info["classes"]),
        "min_size": info["min_size"],
        "max_size": info["max_size"],
        "mean": info["mean"],
        "std": info["std"],
        "input": "image: float32 [3, H, W], RGB in [0, 1]; resized and normalised inside",
        "outputs": "boxes [n, 4] xyxy pixels, labels [n] (1..K: classes[label - 1]), scores [n]",
    }
    names = ["boxes", "labels", "scores"]
    axes = {"image": {1: "height", 2: "width"}, **{n: {0: "detections"} for n in names}}
    example = torch.rand(3, info["min_size"], info["min_size"])
    return Wrapped(DetectExport(model).eval(), example, meta, names, axes)
