"""The modules `tuneterm export-model` writes: a run's model plus its preprocessing, with one
plain tensor signature that TorchScript and ONNX can carry (see tuneterm/export.py)."""

from typing import List, Tuple  # noqa: UP035 - TorchScript reads these annotations

import torch
from torch import nn


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
