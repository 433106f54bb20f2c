"""Object detection as a task object for the one Trainer (engine/trainer.py): lists of images
and box targets, the detector's own loss terms, and COCO mAP each epoch (torchmetrics'
MeanAveragePrecision on the faster-coco-eval backend)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from tuneterm.config import RunConfig, SpeedSection
from tuneterm.engine.data import default_workers
from tuneterm.engine.ddp import Dist, Rank
from tuneterm.engine.device import cuda_speed, pick_device, pick_precision
from tuneterm.engine.kinds import Setup, Started
from tuneterm.engine.kinds.detect.data import (
    DetData,
    DetSplit,
    Target,
    batch_count,
    batches,
    make_transform,
)
from tuneterm.tasks.detect import DetectSection

if TYPE_CHECKING:
    from tuneterm.engine.epochs import RunContext
    from tuneterm.engine.techniques import Techniques
    from tuneterm.engine.trainer import Trainer

MAP_BACKEND: Literal["faster_coco_eval"] = "faster_coco_eval"


class DetectTask:
    """A torchvision detector: the model computes its own losses from (images, targets)."""

    head_name = ""
    lr_group = 0
    init: Path | None = None
    teacher: nn.Module | None = None

    def __init__(
        self, cfg: RunConfig, model: nn.Module, data: DetData, setup: Setup, note: str = ""
    ) -> None:
        self.cfg, self.model, self.data, self.device = cfg, model, data, setup.device
        self.pin = self.device.type == "cuda" and cfg.speed.pin_memory
        self.transform = make_transform(cfg.data.augment)
        self.streamed = data.train.images is None
        workers = default_workers() if cfg.data.workers < 0 else cfg.data.workers
        self.workers = workers if self.streamed else 0
        self.started = Started(cfg.model.name, note, _versions())

    def speed(self, sp: SpeedSection, model: nn.Module) -> None:
        # No autotuner: a detector's batches change shape. No channels_last: torchvision's
        # detection transform batches images in the default layout.
        cuda_speed(sp, self.device, None, fixed_shapes=False)

    def steps_per_epoch(self, ranks: tuple[int, int]) -> int:
        return batch_count(len(self.data.train), self.cfg.train.batch_size)

    def train_batches(self, epoch: int, start_batch: int, ranks: tuple[int, int]) -> Iterator[Any]:
        t = self.cfg.train
        return batches(
            self.data.train,
            t.batch_size,
            shuffle_seed=t.seed,
            epoch=epoch,
            start_batch=start_batch,
            transform=self.transform,
            workers=self.workers,
            pin=self.pin,
            prefetch=self.cfg.speed.prefetch,
        )

    def to_device(self, batch: Any) -> tuple[list[torch.Tensor], list[Target]]:
        xs, ts = batch
        dev = self.device
        images = [x.to(dev, non_blocking=True).float().div_(255) for x in xs]
        targets = [{k: v.to(dev, non_blocking=True) for k, v in t.items()} for t in ts]
        return images, targets

    def loss(
        self, forward: Callable[..., Any], x: list[torch.Tensor], y: list[Target]
    ) -> tuple[torch.Tensor, None]:
        losses = forward(x, y)  # the model's own loss terms
        return sum(losses.values()), None

    def evaluate(self, model: nn.Module, split: DetSplit, full: bool = False) -> dict[str, Any]:
        return evaluate(
            model, split, self.data.classes, self.cfg.train.batch_size, self.device, full
        )

    def checkpoint(self, model: nn.Module, tech: Techniques) -> dict[str, Any]:
        tr: Any = model.transform
        return {
            "model": model.state_dict(),
            "task": "detect",
            "model_name": self.cfg.model.name,
            "num_classes": len(self.data.classes),
            "classes": self.data.classes,
            "min_size": int(tr.min_size[0]),
            "max_size": int(tr.max_size),
            "detections": DetectSection.of(self.cfg).detections,
            "mean": [float(v) for v in tr.image_mean],
            "std": [float(v) for v in tr.image_std],
        }


def build(cfg: RunConfig, setup: Setup) -> DetectTask:
    from tuneterm.engine.kinds.detect.data import build as build_data
    from tuneterm.engine.kinds.detect.models import build_detector
    from tuneterm.engine.registry import resolve_init

    data = build_data(cfg.data, DetectSection.of(cfg), cfg.train.seed)
    assert setup.store is not None  # the engine always runs in a runs folder
    init = resolve_init(cfg, setup.store)
    built = build_detector(cfg, len(data.classes), init)
    note = f"; backbone stages trained: {built.trainable_stages}"
    return DetectTask(cfg, built.model, data, setup, note)


def trainer(cfg: RunConfig, model: nn.Module, data: DetData, ctx: RunContext) -> Trainer:
    """A Trainer for a detector already built (tests, benchmarks)."""
    from tuneterm.engine.trainer import Trainer

    device = pick_device(cfg.train.device)
    setup = Setup(device, Dist(Rank(), device), pick_precision(cfg.train.precision, device))
    return Trainer(cfg, DetectTask(cfg, model, data, setup), ctx)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "torchmetrics": version("torchmetrics"),
        "faster_coco_eval": version("faster-coco-eval"),
    }


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: DetSplit,
    classes: list[str],
    batch_size: int,
    device: torch.device,
    full: bool = False,
) -> dict[str, Any]:
    """COCO mAP@[.5:.95], mAP@.5 and mAP@.75 of `model` on `split`; with `full`, AP per class
    (classes with no box in the split and no prediction are left out)."""
    from torchmetrics.detection import MeanAveragePrecision

    model.eval()
    metric = MeanAveragePrecision(iou_type="bbox", backend=MAP_BACKEND, class_metrics=full)
    n = 0
    for xs, ts in batches(split, batch_size):
        images = [x.to(device).float().div_(255) for x in xs]
        preds = model(images)
        metric.update(
            [{k: v.cpu() for k, v in p.items()} for p in preds],
            [{k: v.cpu() for k, v in t.items()} for t in ts],
        )
        n += len(images)
    r = metric.compute()
    out: dict[str, Any] = {
        "map": _score(r["map"]),
        "map50": _score(r["map_50"]),
        "map75": _score(r["map_75"]),
        "n": n,
    }
    if full:
        per: dict[str, float] = {}
        ids = r["classes"].flatten().tolist()
        aps = r["map_per_class"].flatten().tolist()
        for cid, ap in zip(ids, aps, strict=True):
            if 1 <= cid <= len(classes) and ap >= 0:  # -1: no box of the class to score
                per[classes[cid - 1]] = round(ap, 4)
        out["per_class"] = per
    return out


def _score(v: torch.Tensor) -> float:
    """torchmetrics reports -1 when there is nothing to score; that reads as 0 here."""
    return max(0.0, round(float(v), 5))
