"""torchvision models by name, with the classifier replaced for the data set's classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tuneterm.config import HeadSection, ModelSection
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


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def make_head(
    in_features: int, num_classes: int, head: HeadSection | None, conv: bool = False
) -> nn.Module:
    """A linear head, or an MLP (hidden sizes, activation, dropout) ending in the classes."""
    head = head or HeadSection.model_validate({})
    layers: list[nn.Module] = []
    width = in_features
    for hidden in head.hidden if head.kind == "mlp" else []:
        layers.append(nn.Conv2d(width, hidden, 1) if conv else nn.Linear(width, hidden))
        layers.append(ACTIVATIONS[head.activation]())
        if head.dropout > 0:
            layers.append(nn.Dropout(head.dropout))
        width = hidden
    layers.append(nn.Conv2d(width, num_classes, 1) if conv else nn.Linear(width, num_classes))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


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
    cfg: ModelSection, num_classes: int, init: Path | None, head: HeadSection | None = None
) -> Built:
    import torchvision

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


def from_checkpoint(path: Path) -> nn.Module:
    """The model a run saved (`best.pt`), ready for inference: full weights, or LoRA adapters
    and head loaded onto the backbone they were trained on."""
    import torchvision

    ck = torch.load(path, map_location="cpu", weights_only=True)
    head = HeadSection(**ck["head"]) if ck.get("head") else None
    backbone = ck.get("backbone")
    if backbone:  # a LoRA run: the backbone is rebuilt from where that run started
        base = ModelSection.model_validate(
            {"name": ck["model_name"], "weights": backbone["weights"]}
        )
        init = Path(backbone["init"]) if backbone.get("init") else None
        built = build_model(base, int(ck["num_classes"]), init, head)
        model = built.model
        if ck.get("dropout"):
            replace_head(model, int(ck["num_classes"]), float(ck["dropout"]), head)
        from tuneterm.engine.techniques.lora import inject

        inject(model, built.head_name, ck["lora"])
        _missing, unexpected = model.load_state_dict(ck["model"], strict=False)
        if unexpected:
            raise ModelError(f"{path}: {len(unexpected)} adapter keys do not fit the backbone")
        return model
    model = torchvision.models.get_model(ck["model_name"], weights=None)
    replace_head(model, int(ck["num_classes"]), float(ck.get("dropout", 0.0)), head)
    model.load_state_dict(ck["model"])
    return model
