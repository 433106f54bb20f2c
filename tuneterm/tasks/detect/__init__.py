"""Object detection: a torchvision detector with a new box predictor (engine/kinds/detect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneterm.errors import ConfigIssue, path_issues
from tuneterm.tasks.detect.section import DetectSection
from tuneterm.tasks.spec import Metric, TaskSpec

if TYPE_CHECKING:
    from tuneterm.config import RunConfig

NAME = "detect"
DATASETS = ("coco", "voc", "shapes-boxes", "digits-boxes")
# model.name -> what it is; every entry is a torchvision.models.detection builder
MODELS: dict[str, str] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "Faster R-CNN, MobileNetV3 + FPN, 320 px",
    "fasterrcnn_mobilenet_v3_large_fpn": "Faster R-CNN, MobileNetV3 + FPN, 800 px",
    "fasterrcnn_resnet50_fpn": "Faster R-CNN, ResNet-50 + FPN",
    "fasterrcnn_resnet50_fpn_v2": "Faster R-CNN v2, ResNet-50 + FPN",
    "retinanet_resnet50_fpn": "RetinaNet, ResNet-50 + FPN",
    "retinanet_resnet50_fpn_v2": "RetinaNet v2, ResNet-50 + FPN",
    "fcos_resnet50_fpn": "FCOS, ResNet-50 + FPN",
    "ssdlite320_mobilenet_v3_large": "SSDlite, MobileNetV3, 320 px",
}


def models() -> dict[str, str]:
    return dict(MODELS)


def check(cfg: RunConfig) -> list[ConfigIssue]:
    """Detection's own options, and its data sets and metrics refused elsewhere."""
    issues = []
    detect = cfg.run.task == NAME
    if not detect and cfg.train.metric in ("val_map", "val_map50"):
        issues.append(
            ConfigIssue(
                "train.metric",
                cfg.train.metric,
                f'mAP is for detect runs; {cfg.run.task} runs pick by "val_acc" or "val_loss"',
            )
        )
    if detect and cfg.speed.compile != "off":
        issues.append(
            ConfigIssue(
                "speed.compile",
                cfg.speed.compile,
                'detectors are not compiled (their batch shapes vary per batch); use "off"',
            )
        )
    if detect and (
        cfg.model.source != "torchvision" or cfg.model.name.startswith(("timm/", "hf/"))
    ):
        issues.append(
            ConfigIssue(
                "model.source",
                cfg.model.source,
                "detect runs take torchvision's detectors (`tuneterm models --task detect`); "
                'use "torchvision"',
            )
        )
    if detect and cfg.train.metric == "val_loss":
        issues.append(
            ConfigIssue("train.metric", "val_loss", "detect runs pick by val_map or val_map50")
        )
    ds = cfg.data.dataset
    if ds in ("coco", "voc"):
        issues += path_issues("data.root", cfg.data.root, f"data.dataset = {ds}")
    if ds == "coco":
        issues += path_issues(
            "data.annotations", cfg.data.annotations, "data.dataset = coco", "file"
        )
    return issues


SPEC = TaskSpec(
    name=NAME,
    noun="detection",
    summary="object detection: torchvision detectors with a new box predictor",
    engine="tuneterm.engine.kinds.detect",
    catalog=f"{__name__}:models",
    exporter="tuneterm.engine.kinds.detect.export:wrap",
    datasets=DATASETS,
    val_metrics=(
        Metric("val_map", "mAP"),
        Metric("val_map50", "mAP@.5"),
        Metric("val_map75", "mAP@.75", pane=""),
    ),
    loss=None,
    test_metrics=(
        Metric("test_map", "mAP"),
        Metric("test_map50", "mAP@.5"),
        Metric("test_map75", "mAP@.75"),
    ),
    select=("val_map", "val_map50"),
    checks=(check,),
    section=DetectSection,
)
