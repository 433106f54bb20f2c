"""timm and Hugging Face classifiers (`model.source`), built for the data set's classes.

Both are wrapped in `SourceNet`, which gives the engine what it asks of a model:
- `forward(x) -> logits` (an HF model returns an output object; its logits are taken);
- `body_stages()`: timm's own parameter groups (`group_matcher`) from stem to top, which
  layer-wise lr decay and gradual unfreezing use instead of a list kept by hand;
- `lora_targets()`: the Linear projections of attention and MLP blocks (ViTs), else every
  Linear and Conv2d of the body.
The model's preprocessing (input size, mean and std, interpolation, crop) comes from timm's
pretrained config or the HF image processor, and goes into the checkpoint (`preprocess`).
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuneterm.config import HeadSection, ModelSection, sources
from tuneterm.engine.kinds.classify.resize import SQUASH, Resize
from tuneterm.engine.models import ModelError, Stage

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LORA_PROJECTIONS = ("qkv", "proj", "fc1", "fc2", "query", "key", "value", "dense")


@dataclass
class SourceBuilt:
    model: nn.Module
    head_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    preprocess: dict[str, Any] = field(default_factory=dict)  # what rebuilds and feeds it


class SourceNet(nn.Module):
    """A timm or HF classifier with the hooks the engine reads (see the module docstring)."""

    def __init__(self, net: nn.Module, source: str, head: str) -> None:
        super().__init__()
        self.net, self.source, self.head = net, source, head

    def body_stages(self) -> list[Stage]:
        head = f"net.{self.head}."
        if self.source == "timm" and callable(getattr(self.net, "group_matcher", None)):
            from timm.models import group_parameters

            matcher: Any = self.net.group_matcher
            groups = group_parameters(self.net, matcher(coarse=False))
            out = []
            for gid in sorted(groups):
                params = [f"net.{n}" for n in groups[gid] if not f"net.{n}".startswith(head)]
                if params:
                    out.append(Stage(f"group{gid}", params))
            return out
        from tuneterm.engine.models import stages

        return [
            Stage(f"net.{s.name}", [f"net.{p}" for p in s.params])
            for s in stages(self.net, self.head)
        ]

    def lora_targets(self) -> list[str]:
        body = [
            (f"net.{n}", m)
            for n, m in self.net.named_modules()
            if n and not (n == self.head or n.startswith(self.head + "."))
        ]
        projections = [
            n
            for n, m in body
            if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in LORA_PROJECTIONS
        ]
        return projections or [n for n, m in body if isinstance(m, nn.Linear | nn.Conv2d)]


class TimmNet(SourceNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HFNet(SourceNet):
    """An HF model's logits; ViTs take any image size (`interpolate_pos_encoding`)."""

    def __init__(self, net: nn.Module, source: str, head: str) -> None:
        super().__init__(net, source, head)
        self.interpolate = "interpolate_pos_encoding" in inspect.signature(net.forward).parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.interpolate:
            return self.net(pixel_values=x, interpolate_pos_encoding=True).logits
        return self.net(pixel_values=x).logits


def _new_head(net: nn.Module, name: str, n: int, dropout: float, head: HeadSection | None) -> None:
    """Replace the classifier `name` when head/dropout ask for more than a Linear."""
    from tuneterm.engine.kinds.classify.heads import _set_module, make_head

    if (head is None or head.kind == "linear") and dropout <= 0:
        return
    old = net.get_submodule(name)
    linear = old if isinstance(old, nn.Linear) else None
    for m in old.modules():
        if isinstance(m, nn.Linear):
            linear = m
    if linear is None:
        raise ModelError(f"{name}: found no Linear classifier to replace")
    new = make_head(linear.in_features, n, head)
    _set_module(net, name, nn.Sequential(nn.Dropout(dropout), new) if dropout > 0 else new)


# -- timm ------------------------------------------------------------------------------------
def _classifier(net: nn.Module) -> str:
    """The classifier's module name, as the pretrained config says (the last of several)."""
    named = dict(getattr(net, "pretrained_cfg", {})).get("classifier") or "head"
    return str(named[-1] if isinstance(named, list | tuple) else named)


def _timm_kwargs(name: str, size: int) -> dict[str, Any]:
    """img_size for models that take it (ViTs: position embeddings resampled on load)."""
    import timm

    with torch.device("meta"):
        try:
            timm.create_model(name, img_size=size)
        except TypeError:  # no img_size argument: any size goes
            return {}
        except (AssertionError, RuntimeError, ValueError) as exc:
            raise ModelError(f"data.image_size = {size}: {name} cannot take it ({exc})") from None
    return {"img_size": size}


def build_timm(
    cfg: ModelSection, name: str, n: int, size: int, head: HeadSection | None, pretrained: bool
) -> SourceBuilt:
    import timm

    file = sources.weights_file(cfg.weights)
    kwargs = _timm_kwargs(name, size)
    if pretrained and file is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(file), "num_classes": 0}
    pretrained = pretrained and cfg.weights != "none"
    try:
        net = timm.create_model(name, pretrained=pretrained, num_classes=n, **kwargs)
    except (RuntimeError, OSError) as exc:
        where = f"the file {file}" if file else f"timm's weights for {name}"
        raise ModelError(
            f"model.weights = {cfg.weights!r}: cannot load {where} ({str(exc)[:300]}). Offline, "
            "place the file in the Hugging Face cache, or set model.weights to a local file or "
            '"none"'
        ) from None
    pc: dict[str, Any] = dict(getattr(net, "pretrained_cfg", {}))
    head_name = _classifier(net)
    _new_head(net, head_name, n, cfg.dropout, head)
    mean = tuple(pc.get("mean", IMAGENET_MEAN))
    std = tuple(pc.get("std", IMAGENET_STD))
    preprocess = {
        "source": "timm",
        "name": name,
        "input_size": list(pc.get("input_size", (3, size, size))),
        "interpolation": str(pc.get("interpolation") or "bilinear"),
        "crop_pct": float(pc.get("crop_pct") or 1.0),
        "kwargs": {k: v for k, v in kwargs.items() if k == "img_size"},
    }
    return SourceBuilt(TimmNet(net, "timm", head_name), f"net.{head_name}", mean, std, preprocess)


# -- Hugging Face ------------------------------------------------------------------------------
def _hf_ref(name: str) -> str:
    path = Path(name).expanduser()
    return str(path) if path.is_dir() else name


def build_hf(
    cfg: ModelSection, name: str, classes: list[str], head: HeadSection | None, pretrained: bool
) -> SourceBuilt:
    from transformers import AutoConfig, AutoModelForImageClassification

    ref = _hf_ref(name)
    labels = {
        "num_labels": len(classes),
        "id2label": dict(enumerate(classes)),
        "label2id": {c: i for i, c in enumerate(classes)},
    }
    try:
        if pretrained and cfg.weights != "none":
            net = AutoModelForImageClassification.from_pretrained(
                ref, ignore_mismatched_sizes=True, **labels
            )
        else:
            net = AutoModelForImageClassification.from_config(
                AutoConfig.from_pretrained(ref, **labels)
            )
    except (OSError, ValueError) as exc:
        raise ModelError(f"model.name = {cfg.model_dump()['name']!r}: {str(exc)[:400]}") from None
    return _hf_wrap(net, ref, cfg, len(classes), head)


def _hf_wrap(
    net: nn.Module, ref: str, cfg: ModelSection, n: int, head: HeadSection | None
) -> SourceBuilt:
    head_name = "classifier" if hasattr(net, "classifier") else "head"
    _new_head(net, head_name, n, cfg.dropout, head)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    interpolation = _hf_interpolation(ref)
    try:
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(ref)
        mean = tuple(getattr(proc, "image_mean", mean))
        std = tuple(getattr(proc, "image_std", std))
    except (OSError, ValueError, TypeError):  # no preprocessor_config.json: ImageNet's
        pass
    preprocess = {
        "source": "hf",
        "name": ref,
        "config": net.config.to_json_string(),  # type: ignore[union-attr, operator]
        "interpolation": interpolation,
        "crop_pct": 1.0,
    }
    return SourceBuilt(HFNet(net, "hf", head_name), f"net.{head_name}", mean, std, preprocess)


def build(
    cfg: ModelSection, classes: list[str], size: int, head: HeadSection | None, pretrained: bool
) -> SourceBuilt:
    """A timm or HF classifier for `classes` (pretrained unless model.weights = none or
    `pretrained` is False: model.init or a checkpoint will load the weights)."""
    source, name = sources.split(cfg)
    if pretrained and not sources.catalog_reachable():
        # the hub's client reads this once, at import: set before timm/transformers import it
        os.environ["HF_HUB_OFFLINE"] = "1"
    if source == "timm":
        return build_timm(cfg, name, len(classes), size, head, pretrained)
    return build_hf(cfg, name, classes, head, pretrained)


def input_size(cfg: ModelSection) -> int:
    """The square input size the model was pretrained at (`data.image_size = 0`)."""
    source, name = sources.split(cfg)
    if source == "timm":
        from timm.models import get_pretrained_cfg

        pc = get_pretrained_cfg(name)
        return int(pc.input_size[-1]) if pc is not None else 224
    if source == "hf":
        from transformers import AutoConfig

        size = getattr(AutoConfig.from_pretrained(_hf_ref(name)), "image_size", 224)
        return int(size[-1] if isinstance(size, list | tuple) else size)
    return 224


def resize_of(cfg: ModelSection) -> Resize:
    """How the model reads image files: its pretrained config's interpolation and crop (timm),
    its image processor's resampling (hf), else torchvision's squash to S x S."""
    source, name = sources.split(cfg)
    if source == "timm":
        from timm.models import get_pretrained_cfg

        pc = get_pretrained_cfg(name)
        if pc is None:
            return Resize("bilinear", 1.0)
        return Resize(str(pc.interpolation or "bilinear"), float(pc.crop_pct or 1.0))
    if source == "hf":
        return Resize(_hf_interpolation(_hf_ref(name)), 1.0)
    return SQUASH


def _hf_interpolation(ref: str) -> str:
    try:
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(ref)
    except (OSError, ValueError, TypeError):  # no preprocessor_config.json
        return "bilinear"
    return {2: "bilinear", 3: "bicubic"}.get(int(getattr(proc, "resample", 2)), "bilinear")


def rebuild(ck: dict[str, Any]) -> nn.Module:
    """The model a checkpoint saved, its architecture from `preprocess`, without weights."""
    pre = ck["preprocess"]
    n = int(ck["num_classes"])
    head = HeadSection(**ck["head"]) if ck.get("head") else None
    cfg = ModelSection.model_validate({"name": "x", "dropout": float(ck.get("dropout", 0.0))})
    if pre["source"] == "timm":
        import timm

        net = timm.create_model(pre["name"], num_classes=n, **pre.get("kwargs", {}))
        head_name = _classifier(net)
        _new_head(net, head_name, n, cfg.dropout, head)
        return TimmNet(net, "timm", head_name)
    from transformers import AutoConfig, AutoModelForImageClassification

    conf = json.loads(pre["config"])
    net = AutoModelForImageClassification.from_config(AutoConfig.for_model(**conf))
    return _hf_wrap(net, pre["name"], cfg, n, head).model
