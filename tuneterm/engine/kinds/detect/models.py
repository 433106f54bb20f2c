"""torchvision detectors by name, with the box predictor replaced for the data set's classes.

Labels are 1..K; every model gets K + 1 classes (0 is the background torchvision reserves).
Weights come through torchvision's weights API and cache (COCO), or from a run's checkpoint
(`model.init`), or nothing (`model.weights = "none"`: random init, no ImageNet backbone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuneterm.config import RunConfig
from tuneterm.engine.models import ModelError, download_weights
from tuneterm.engine.registry import resolve_weights
from tuneterm.tasks.detect import MODELS as DETECT_MODELS
from tuneterm.tasks.detect import DetectSection

DETECTORS = DETECT_MODELS  # the supported detectors: tuneterm/tasks/detect.py


@dataclass
class DetBuilt:
    model: nn.Module
    trainable_stages: str  # e.g. "3 of 5", for the log


def _new_logits(old: nn.Conv2d, out_channels: int, prior: float | None) -> nn.Conv2d:
    """A fresh copy of a class-logits conv for `out_channels`; `prior` is the focal-loss
    initial foreground probability (RetinaNet, FCOS)."""
    shape: Any = (old.kernel_size, old.stride, old.padding)
    new = nn.Conv2d(old.in_channels, out_channels, *shape)
    nn.init.normal_(new.weight, std=0.01)
    if new.bias is not None:
        nn.init.constant_(new.bias, -math.log((1 - prior) / prior) if prior else 0.0)
    return new


def replace_predictor(model: nn.Module, num_classes: int) -> None:
    """A new, untrained class predictor for `num_classes` (background included); the rest of
    the head (conv towers, box regression of one-stage models) keeps its weights."""
    from torchvision.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.models.detection.ssd import SSD

    if isinstance(model, FasterRCNN):
        old = model.roi_heads.box_predictor
        model.roi_heads.box_predictor = FastRCNNPredictor(old.cls_score.in_features, num_classes)
    elif isinstance(model, RetinaNet | FCOS):
        head = model.head.classification_head
        anchors = head.num_anchors
        head.cls_logits = _new_logits(head.cls_logits, anchors * num_classes, 0.01)
        head.num_classes = num_classes
    elif isinstance(model, SSD):
        head = model.head.classification_head
        anchors = model.anchor_generator.num_anchors_per_location()
        for block, k in zip(head.module_list, anchors, strict=True):
            block[-1] = _new_logits(block[-1], k * num_classes, None)
        head.num_columns = num_classes
    else:
        raise ModelError(f"{type(model).__name__}: no known box predictor to replace")


def _backbone_blocks(model: nn.Module) -> list[nn.Module]:
    bb: Any = model.backbone
    if hasattr(bb, "body"):  # FPN backbones: ResNet layers or MobileNet blocks
        return list(bb.body.children())
    return [b for part in bb.features for b in part]  # SSDlite: MobileNet split in two


def backbone_stages(model: nn.Module) -> list[list[nn.Module]]:
    """The backbone's stages from stem to top, as torchvision counts them for
    `trainable_backbone_layers`: ResNet conv1 (+bn1), layer1..4; MobileNet stages split at
    its C-blocks. FPN and extra layers are not part of any stage: they always train."""
    blocks = _backbone_blocks(model)
    if any(getattr(b, "_is_cn", False) for b in blocks):
        cuts = [0] + [i for i, b in enumerate(blocks) if getattr(b, "_is_cn", False)]
        cuts.append(len(blocks) - 1)
    else:
        cuts = [0] + [i for i, b in enumerate(blocks) if i and next(b.children(), None) is not None]
    cuts = sorted(set(cuts))
    bounds = [*cuts[1:], len(blocks)]
    return [blocks[a:b] for a, b in zip(cuts, bounds, strict=True)]


def freeze_backbone(model: nn.Module, trainable: int) -> str:
    """Freeze all but the top `trainable` stages (0 = the whole backbone is frozen)."""
    stages = backbone_stages(model)
    n = min(trainable, len(stages))
    for stage in stages[: len(stages) - n]:
        for block in stage:
            for p in block.parameters():
                p.requires_grad_(False)
    return f"{n} of {len(stages)}"


def configure(model: nn.Module, min_size: int, max_size: int, detections: int) -> None:
    """Input resize (the model's own transform) and boxes kept per image."""
    t: Any = model.transform
    if min_size:
        t.min_size = (min_size,)
        if getattr(t, "fixed_size", None):  # SSD: a fixed square input
            t.fixed_size = (min_size, min_size)
    if max_size:
        t.max_size = max_size
    m: Any = model
    if hasattr(m, "roi_heads"):
        m.roi_heads.detections_per_img = detections
    else:
        m.detections_per_img = detections


def build_detector(cfg: RunConfig, num_classes: int, init: Path | None) -> DetBuilt:
    """`num_classes` = K object classes; the model predicts K + 1 (with background)."""
    import torchvision

    name, det = cfg.model.name, DetectSection.of(cfg)
    if name not in DETECTORS:
        raise ModelError(f"model.name = {name!r}: not a detection model ({', '.join(DETECTORS)})")
    tbl = det.trainable_backbone_layers
    member = None if init else resolve_weights(name, cfg.model.weights)
    if member is not None:  # COCO weights: torchvision freezes stages and uses frozen BN
        download_weights(member)
        model = torchvision.models.get_model(
            name, weights=member, trainable_backbone_layers=None if tbl < 0 else tbl
        )
        replace_predictor(model, num_classes + 1)
        stages = backbone_stages(model)
        trainable = sum(any(p.requires_grad for b in s for p in b.parameters()) for s in stages)
        summary = f"{trainable} of {len(stages)}"
    else:
        src_classes = num_classes
        state: dict[str, Any] = {}
        if init is not None:
            state = torch.load(init, map_location="cpu", weights_only=True)
            if state.get("task") != "detect":
                raise ModelError(f"model.init = {str(init)!r}: not a detection checkpoint")
            if state.get("model_name") != name:
                raise ModelError(
                    f"model.init = {str(init)!r}: a {state.get('model_name')} checkpoint, "
                    f"not {name}"
                )
            src_classes = int(state["num_classes"])
        model = torchvision.models.get_model(
            name, weights=None, weights_backbone=None, num_classes=src_classes + 1
        )
        if init is not None:
            model.load_state_dict(state["model"])
            replace_predictor(model, num_classes + 1)  # new classes: an untrained predictor
        summary = freeze_backbone(model, tbl) if tbl >= 0 else "all"
    configure(model, det.min_size, det.max_size, det.detections)
    return DetBuilt(model, summary)


def from_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A detect run's saved model, ready for inference, and the checkpoint's metadata."""
    import torchvision

    ck = torch.load(path, map_location="cpu", weights_only=True)
    model = torchvision.models.get_model(
        ck["model_name"],
        weights=None,
        weights_backbone=None,
        num_classes=int(ck["num_classes"]) + 1,
    )
    model.load_state_dict(ck["model"])
    configure(model, int(ck["min_size"]), int(ck["max_size"]), int(ck["detections"]))
    return model.eval(), {k: v for k, v in ck.items() if k != "model"}
