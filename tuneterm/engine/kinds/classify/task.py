"""Image classification as a task object for the one Trainer (engine/trainer.py): uint8 images
normalised on the device, cross-entropy (soft targets after MixUp/CutMix), accuracy, top-5 and
a confusion matrix, summed over DDP ranks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from tuneterm.config import RunConfig, SpeedSection
from tuneterm.engine.data import batch_indices, default_workers
from tuneterm.engine.ddp import Dist, Rank, shard
from tuneterm.engine.device import autocast, cuda_speed, pick_device, pick_precision
from tuneterm.engine.kinds import Setup, Started
from tuneterm.engine.kinds.classify.data import DataBundle, Split, batches
from tuneterm.engine.kinds.classify.models import Built
from tuneterm.engine.techniques.augment import transform_for

if TYPE_CHECKING:
    from tuneterm.engine.epochs import RunContext
    from tuneterm.engine.techniques import Techniques
    from tuneterm.engine.trainer import Trainer


class ClassifyTask:
    lr_group = 0
    teacher: nn.Module | None = None  # distill.teacher is loaded by the technique

    def __init__(
        self, cfg: RunConfig, built: Built, data: DataBundle, setup: Setup, init: Path | None
    ) -> None:
        self.cfg, self.data, self.init = cfg, data, init
        self.device, self.dist, self.amp = setup.device, setup.dist, setup.precision
        self.model, self.head_name = built.model, built.head_name
        self.preprocess = built.preprocess
        self.mean = torch.tensor(built.mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(built.std, device=self.device).view(1, 3, 1, 1) * 255
        self.transform = transform_for(cfg.data.augment, cfg.data.image_size)
        self.workers = default_workers() if cfg.data.workers < 0 else cfg.data.workers
        self.pin = self.device.type == "cuda" and cfg.speed.pin_memory
        self.streamed = data.train.images is None  # decoded per epoch, not held in RAM
        self.channels_last = False
        self.started = Started(cfg.model.name)

    def speed(self, sp: SpeedSection, model: nn.Module) -> None:
        self.channels_last = cuda_speed(sp, self.device, model)

    def steps_per_epoch(self, ranks: tuple[int, int]) -> int:
        n_train = len(shard(torch.arange(len(self.data.train)), *ranks))  # per rank
        return len(batch_indices(n_train, self.cfg.train.batch_size, None))

    def train_batches(self, epoch: int, start_batch: int, ranks: tuple[int, int]) -> Iterator[Any]:
        t, sp = self.cfg.train, self.cfg.speed
        return batches(
            self.data.train,
            t.batch_size,
            self.cfg.data.image_size,
            shuffle_seed=t.seed,
            epoch=epoch,
            start_batch=start_batch,
            transform=self.transform,
            workers=self.workers,
            pin=self.pin,
            prefetch=sp.prefetch,
            persistent=sp.persistent_workers,
            shard=ranks,
        )

    def to_device(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        x = (x.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def criterion(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # y is class indices, or class probabilities after MixUp/CutMix
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.train.label_smoothing)

    def loss(
        self, forward: Callable[..., Any], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = forward(x)
        return self.criterion(logits, y), logits

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: Split, full: bool = False) -> dict[str, Any]:
        k = len(self.data.classes)
        conf = torch.zeros(k, k, dtype=torch.long, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        top5 = torch.zeros((), device=self.device)
        n = 0
        for batch in batches(
            split,
            self.cfg.train.batch_size * 2,
            self.cfg.data.image_size,
            workers=self.workers,
            pin=self.pin,
            shard=(self.dist.rank.rank, self.dist.rank.world),
            drop_single=False,
        ):
            x, y = self.to_device(batch)
            with autocast(self.device, self.amp):
                logits = model(x)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            pred = logits.argmax(1)
            conf += torch.bincount(y * k + pred, minlength=k * k).view(k, k)
            top5 += (logits.topk(min(5, k), 1).indices == y[:, None]).any(1).sum()
            n += len(y)
        if self.dist.on:  # each rank saw its share of the split: sum the shares
            counts = torch.stack([loss_sum, top5.float(), loss_sum.new_tensor(float(n))])
            self.dist.all_reduce_sum(conf)
            self.dist.all_reduce_sum(counts)
            loss_sum, top5, n = counts[0], counts[1], int(counts[2].item())
        conf_cpu = conf.cpu()
        correct = conf_cpu.diag().sum().item()
        out: dict[str, Any] = {
            "loss": loss_sum.item() / max(n, 1),
            "acc": correct / max(n, 1),
            "top5": top5.item() / max(n, 1),
            "n": n,
        }
        if full:
            per = conf_cpu.diag().float() / conf_cpu.sum(1).clamp(min=1).float()
            out["per_class"] = dict(
                zip(self.data.classes, [round(v, 4) for v in per.tolist()], strict=True)
            )
            out["confusion"] = conf_cpu.tolist()
        return out

    def checkpoint(self, model: nn.Module, tech: Techniques) -> dict[str, Any]:
        return {
            "model": tech.checkpoint_weights(model.state_dict()),
            **tech.checkpoint_extra(),
            "model_name": self.cfg.model.name,
            "model_source": self.cfg.model.source,
            **({"preprocess": self.preprocess} if self.preprocess else {}),
            "num_classes": len(self.data.classes),
            "classes": self.data.classes,
            "dropout": self.cfg.model.dropout,
            "head": self.cfg.head.model_dump(),
            "image_size": self.cfg.data.image_size,
            "mean": (self.mean.flatten() / 255).tolist(),
            "std": (self.std.flatten() / 255).tolist(),
        }


def build(cfg: RunConfig, setup: Setup) -> ClassifyTask:
    from tuneterm.engine.kinds.classify.data import build as build_data
    from tuneterm.engine.kinds.classify.models import build_model
    from tuneterm.engine.kinds.classify.sources import resize_of
    from tuneterm.engine.models import init_rng
    from tuneterm.engine.registry import resolve_init

    if cfg.data.image_size == 0:  # the model's own input size; the checkpoint records it
        from tuneterm.engine.kinds.classify.sources import input_size

        cfg.data.image_size = input_size(cfg.model)
        setup.log(f"data.image_size = 0: the model's input size, {cfg.data.image_size} px")
    data = build_data(cfg.data, cfg.train.seed, resize_of(cfg.model))
    setup.phase("data")
    assert setup.store is not None  # the engine always runs in a runs folder
    init = resolve_init(cfg, setup.store)
    with init_rng(cfg.model.init_seed):
        built = build_model(
            cfg.model, len(data.classes), init, cfg.head, data.classes, cfg.data.image_size
        )
    return ClassifyTask(cfg, built, data, setup, init)


def trainer(
    cfg: RunConfig,
    built: Built,
    data: DataBundle,
    ctx: RunContext,
    init: Path | None = None,
    dist: Dist | None = None,
) -> Trainer:
    """A Trainer for a classifier already built (tests, benchmarks, `tuneterm lr-find`)."""
    from tuneterm.engine.trainer import Trainer

    device = dist.device if dist is not None else pick_device(cfg.train.device)
    dist = dist if dist is not None else Dist(Rank(), device)
    setup = Setup(device, dist, precision=pick_precision(cfg.train.precision, device))
    return Trainer(cfg, ClassifyTask(cfg, built, data, setup, init), ctx, dist)
