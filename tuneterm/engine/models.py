"""torchvision models by name, with the classifier replaced for the data set's classes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tuneterm.config import ModelSection
from tuneterm.engine.registry import resolve_weights, weights_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(RuntimeError):
    pass


@dataclass
class Built:
    model: nn.Module
    head_name: str  # dotted module path of the new classifier
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _last_classifier(model: nn.Module) -> tuple[str, nn.Module]:
    """The model's final classifier layer: its last Linear, or a 1x1 Conv2d head (SqueezeNet)."""
    found: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (
            isinstance(module, nn.Conv2d) and "classifier" in name and module.kernel_size == (1, 1)
        ):
            found = (name, module)
    if found is None:
        raise ModelError(f"{type(model).__name__}: found no Linear classifier to replace")
    return found


def _set_module(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def replace_head(model: nn.Module, num_classes: int, dropout: float) -> str:
    name, old = _last_classifier(model)
    new: nn.Module
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes)
    else:
        assert isinstance(old, nn.Conv2d)
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)
    if dropout > 0:
        new = nn.Sequential(nn.Dropout(dropout), new)
    _set_module(model, name, new)
    return name


def _download_weights(member: object) -> None:
    """Fetch into torchvision's cache with a socket timeout, so no network never means a hang."""
    import socket

    wf = weights_file(member)
    if wf.cached:
        return
    if os.environ.get("TUNETERM_OFFLINE", "") not in ("", "0"):
        raise ModelError(wf.missing_message())
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        wf.path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(wf.url, str(wf.path), progress=False)
    except Exception as exc:
        raise ModelError(f"{wf.missing_message()} (download failed: {exc})") from None
    finally:
        socket.setdefaulttimeout(old)


def build_model(cfg: ModelSection, num_classes: int, init: Path | None) -> Built:
    import torchvision

    member = None if init else resolve_weights(cfg.name, cfg.weights)
    if member is not None:
        _download_weights(member)
    model = torchvision.models.get_model(cfg.name, weights=member)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if member is not None:
        preset = member.transforms()
        mean = tuple(getattr(preset, "mean", mean))
        std = tuple(getattr(preset, "std", std))
    if init is not None:
        # A source-task checkpoint: its head is for other classes, so load the body and then
        # replace the head.
        state = torch.load(init, map_location="cpu", weights_only=True)
        weights = state.get("model", state)
        src_classes = state.get("num_classes")
        if src_classes:
            replace_head(model, int(src_classes), float(state.get("dropout", 0.0)))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or len(missing) > 4:
            raise ModelError(
                f"model.init = {str(init)!r}: checkpoint does not fit {cfg.name} "
                f"({len(missing)} missing, {len(unexpected)} unexpected keys)"
            )
    head = replace_head(model, num_classes, cfg.dropout)
    return Built(model, head, mean, std)


def count_params(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
