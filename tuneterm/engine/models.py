"""torchvision models by name, with the classifier replaced for the data set's classes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuneterm.config import HeadSection, ModelSection
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


def build_model(
    cfg: ModelSection, num_classes: int, init: Path | None, head: HeadSection | None = None
) -> Built:
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


@dataclass
class Stage:
    name: str
    params: list[str]  # parameter names


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def stages(model: nn.Module, head_name: str) -> list[Stage]:
    """The body's stages from stem to top (the head excluded), for freezing and lr decay.

    Top-level children in order; a child that holds most of the body and has several children
    (VGG/MobileNet `features`, ViT `encoder.layers`) is split into them; leading leaf modules
    (conv1, bn1) merge into one stem stage. Parameters outside every child join the stem.
    A model may define its own (`body_stages()`, e.g. text models: embeddings, then layers)."""
    own = getattr(model, "body_stages", None)
    if callable(own):
        return list(own())
    head_prefix = head_name + "."
    total = max(
        1, sum(p.numel() for n, p in model.named_parameters() if not n.startswith(head_prefix))
    )

    def expand(name: str, m: nn.Module) -> list[tuple[str, nn.Module]]:
        kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children() if _numel(c)]
        if name and len(kids) > 2 and _numel(m) > total / 2:
            return kids
        big = [kc for kc in kids if _numel(kc[1]) > 0.9 * _numel(m)]
        if name and len(big) == 1:
            return expand(*big[0])
        return [(name, m)] if name else [x for k in kids for x in expand(*k)]

    groups: list[tuple[str, nn.Module]] = expand("", model)
    out: list[Stage] = []
    seen: set[str] = set()
    stem_open = True  # leading leaf modules (conv1, bn1) form one stem stage
    for name, m in groups:
        params = [f"{name}.{n}" for n, _ in m.named_parameters()]
        params = [n for n in params if not n.startswith(head_prefix)]
        if not params:
            continue
        seen.update(params)
        leaf = next(m.children(), None) is None
        if leaf and stem_open and out:
            out[-1].name += f"+{name}"
            out[-1].params += params
        else:
            out.append(Stage(name, params))
        stem_open = stem_open and leaf
    stray = [
        n for n, _ in model.named_parameters() if n not in seen and not n.startswith(head_prefix)
    ]
    if stray:
        if out:
            out[0].params = stray + out[0].params
        else:
            out.append(Stage("stem", stray))
    return out


def count_params(model: nn.Module) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "total": total,
        "trainable": trainable,
        "trainable_pct": round(100 * trainable / max(1, total), 3),
    }
