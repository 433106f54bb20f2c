"""torchvision models by name, with the classifier replaced for the data set's classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuneterm.config import HeadSection, ModelSection, sources
from tuneterm.engine.kinds.classify.heads import ACTIVATIONS as ACTIVATIONS  # re-exported
from tuneterm.engine.kinds.classify.heads import _set_module, make_head
from tuneterm.engine.models import ModelError, download_weights
from tuneterm.engine.registry import resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Built:
    model: nn.Module
    head_name: str  # dotted module path of the new classifier
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    preprocess: dict[str, Any] = field(default_factory=dict)  # timm/hf: what rebuilds it


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


def replace_head(
    model: nn.Module, num_classes: int, dropout: float, head: HeadSection | None = None
) -> str:
    name, old = _last_classifier(model)
    new: nn.Module
    if isinstance(old, nn.Linear):
        new = make_head(old.in_features, num_classes, head)
    else:
        assert isinstance(old, nn.Conv2d)
        new = make_head(old.in_channels, num_classes, head, conv=True)
    if dropout > 0:
        new = nn.Sequential(nn.Dropout(dropout), new)
    _set_module(model, name, new)
    return name


def build_model(
    cfg: ModelSection,
    num_classes: int,
    init: Path | None,
    head: HeadSection | None = None,
    classes: list[str] | None = None,
    size: int = 32,
) -> Built:
    """The classifier `cfg` names, for `num_classes` (`classes`: their names, which HF models
    keep), from its pretrained weights or from `init`."""
    import torchvision

    if sources.split(cfg)[0] != "torchvision":
        return _build_source(cfg, classes or [str(i) for i in range(num_classes)], init, head, size)
    member = None if init else resolve_weights(cfg.name, cfg.weights)
    if member is not None:
        download_weights(member)
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
        if state.get("lora"):  # adapters + head only: rebuild the shared backbone under them
            src = from_checkpoint(init)
            head_name = replace_head(src, num_classes, cfg.dropout, head)
            return Built(src, head_name, mean, std)
        src_classes = state.get("num_classes")
        if src_classes:
            src_head = HeadSection(**state["head"]) if state.get("head") else None
            replace_head(model, int(src_classes), float(state.get("dropout", 0.0)), src_head)
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or len(missing) > 4:
            raise ModelError(
                f"model.init = {str(init)!r}: checkpoint does not fit {cfg.name} "
                f"({len(missing)} missing, {len(unexpected)} unexpected keys)"
            )
    head_name = replace_head(model, num_classes, cfg.dropout, head)
    return Built(model, head_name, mean, std)


def _build_source(
    cfg: ModelSection, classes: list[str], init: Path | None, head: HeadSection | None, size: int
) -> Built:
    """A timm or HF classifier; from `init` (another run's checkpoint): its body, a new head."""
    from tuneterm.engine.kinds.classify import sources as built_from

    b = built_from.build(cfg, classes, size, head, pretrained=init is None)
    if init is not None:
        state = torch.load(init, map_location="cpu", weights_only=True)
        if state.get("lora"):
            src = from_checkpoint(init)
            raise_if = "" if isinstance(src, built_from.SourceNet) else "not a timm/hf run"
            if raise_if:
                raise ModelError(f"model.init = {str(init)!r}: {raise_if}")
            state = {"model": src.state_dict()}
        own = b.model.state_dict()
        weights = state.get("model", state)
        head_prefix = b.head_name + "."
        fit = {
            k: v
            for k, v in weights.items()
            if k in own and own[k].shape == v.shape and not k.startswith(head_prefix)
        }
        body = [k for k in own if not k.startswith(head_prefix)]
        if len(fit) < 0.9 * len(body):
            raise ModelError(
                f"model.init = {str(init)!r}: checkpoint does not fit {cfg.name} "
                f"({len(body) - len(fit)} of {len(body)} body tensors missing or of another shape)"
            )
        b.model.load_state_dict(fit, strict=False)
    return Built(b.model, b.head_name, b.mean, b.std, b.preprocess)


def from_checkpoint(path: Path) -> nn.Module:
    """The model a run saved (`best.pt`), ready for inference: full weights, or LoRA adapters
    and head loaded onto the backbone they were trained on."""
    import torchvision

    ck = torch.load(path, map_location="cpu", weights_only=True)
    head = HeadSection(**ck["head"]) if ck.get("head") else None
    backbone = ck.get("backbone")
    if backbone:  # a LoRA run: the backbone is rebuilt from where that run started
        base = ModelSection.model_validate(
            {
                "name": ck["model_name"],
                "weights": backbone["weights"],
                "source": ck.get("model_source", "torchvision"),
                "dropout": float(ck.get("dropout", 0.0)) if ck.get("preprocess") else 0.0,
            }
        )
        init = Path(backbone["init"]) if backbone.get("init") else None
        classes = list(ck.get("classes") or []) or None
        size = int(ck.get("image_size", 32))
        built = build_model(base, int(ck["num_classes"]), init, head, classes, size)
        model = built.model
        if ck.get("dropout") and not built.preprocess:
            replace_head(model, int(ck["num_classes"]), float(ck["dropout"]), head)
        from tuneterm.engine.techniques.lora import inject

        inject(model, built.head_name, ck["lora"])
        _missing, unexpected = model.load_state_dict(ck["model"], strict=False)
        if unexpected:
            raise ModelError(f"{path}: {len(unexpected)} adapter keys do not fit the backbone")
        return model
    if ck.get("preprocess"):  # timm or hf
        from tuneterm.engine.kinds.classify.sources import rebuild

        model = rebuild(ck)
        model.load_state_dict(ck["model"])
        return model
    model = torchvision.models.get_model(ck["model_name"], weights=None)
    replace_head(model, int(ck["num_classes"]), float(ck.get("dropout", 0.0)), head)
    model.load_state_dict(ck["model"])
    return model
