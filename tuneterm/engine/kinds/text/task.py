"""Text classification as a task object for the one Trainer (engine/trainer.py): token
batches (ids and attention mask), cross-entropy, accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tuneterm.config import RunConfig, SpeedSection
from tuneterm.engine.data import batch_indices
from tuneterm.engine.ddp import Dist, Rank
from tuneterm.engine.device import autocast, cuda_speed, pick_device, pick_precision
from tuneterm.engine.kinds import Setup, Started
from tuneterm.engine.kinds.text.data import TextData, TextSplit, batches
from tuneterm.engine.kinds.text.models import TextClassifier
from tuneterm.tasks.text import TextSection

if TYPE_CHECKING:
    from tuneterm.engine.epochs import RunContext
    from tuneterm.engine.techniques import Techniques
    from tuneterm.engine.trainer import Trainer


def scores(conf: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and a per-class report (precision, recall, F1, support) from a
    confusion matrix (rows: true class, columns: predicted)."""
    tp = np.diag(conf).astype(np.float64)
    support = conf.sum(1)
    predicted = conf.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0  # macro-F1 over the classes the split holds
    return {
        "acc": float(tp.sum() / max(1, conf.sum())),
        "f1": float(f1[present].mean()) if present.any() else 0.0,
        "report": {
            c: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
    }


class TextTask:
    """A Hugging Face sequence classifier on token ids; the data is tokenized once, in RAM."""

    lr_group = -1
    init: Path | None = None
    streamed, workers = False, 0

    def __init__(
        self,
        cfg: RunConfig,
        model: TextClassifier,
        tokenizer: Any,
        data: TextData,
        setup: Setup,
        teacher: nn.Module | None = None,
        started: Started | None = None,
    ) -> None:
        self.cfg, self.model, self.data, self.teacher = cfg, model, data, teacher
        self.device, self.amp = setup.device, setup.precision
        self.head_name, self.base_name = model.head_name, model.base_name
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.length = (
            TextSection.of(cfg).max_length if TextSection.of(cfg).padding == "max_length" else None
        )
        self.pin = self.device.type == "cuda" and cfg.speed.pin_memory
        self.started = started or Started(TextSection.of(cfg).model)

    def speed(self, sp: SpeedSection, model: nn.Module) -> None:
        cuda_speed(sp, self.device, None, fixed_shapes=self.length is not None)

    def batches(self, split: TextSplit, size: int, **kw: Any) -> Iterator[Any]:
        return batches(split, size, self.pad_id, self.length, **kw)

    def steps_per_epoch(self, ranks: tuple[int, int]) -> int:
        return len(batch_indices(len(self.data.train), self.cfg.train.batch_size, None))

    def train_batches(self, epoch: int, start_batch: int, ranks: tuple[int, int]) -> Iterator[Any]:
        t = self.cfg.train
        return self.batches(
            self.data.train, t.batch_size, shuffle_seed=t.seed, epoch=epoch, start_batch=start_batch
        )

    def to_device(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        xb, yb = batch
        if self.pin:  # page-locked, so the copies below do not block the host
            xb, yb = xb.pin_memory(), yb.pin_memory()
        return xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)

    def loss(
        self, forward: Callable[..., Any], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = forward(x)
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.train.label_smoothing), logits

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: TextSplit, full: bool = False) -> dict[str, Any]:
        k = len(self.data.classes)
        conf = torch.zeros(k, k, dtype=torch.long, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        for xb, yb in self.batches(split, self.cfg.train.batch_size * 2):
            x, y = xb.to(self.device), yb.to(self.device)
            with autocast(self.device, self.amp):
                logits = model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            conf += torch.bincount(y * k + logits.argmax(1), minlength=k * k).view(k, k)
        conf_np = conf.cpu().numpy()
        n = int(conf_np.sum())
        out = scores(conf_np, self.data.classes)
        out.update(loss=loss_sum.item() / max(n, 1), n=n, confusion=conf_np.tolist())
        if full:  # per-class accuracy, as image runs report it: the recall
            out["per_class"] = {c: r["recall"] for c, r in out["report"].items()}
        return out

    def checkpoint(self, model: nn.Module, tech: Techniques) -> dict[str, Any]:
        weights = model.state_dict()
        lora = self.cfg.lora.enabled
        if lora:  # adapters and everything outside the base model (the head); the base is shared
            base = self.base_name + "."
            weights = {k: v for k, v in weights.items() if "lora_" in k or not k.startswith(base)}
        return {
            "model": weights,
            "task": self.cfg.run.task,
            "classes": self.data.classes,
            "num_classes": len(self.data.classes),
            "text": TextSection.of(self.cfg).model_dump(),
            "pretrained": self.cfg.model.weights != "none",
            "partial": lora,
            **({"lora": self.cfg.lora.model_dump()} if lora else {}),
        }


def trainer(
    cfg: RunConfig,
    model: TextClassifier,
    tokenizer: Any,
    data: TextData,
    ctx: RunContext,
    teacher: nn.Module | None = None,
) -> Trainer:
    """A Trainer for a text model already built and data already tokenized (tests, benches)."""
    from tuneterm.engine.trainer import Trainer

    device = pick_device(cfg.train.device)
    setup = Setup(device, Dist(Rank(), device), pick_precision(cfg.train.precision, device))
    return Trainer(cfg, TextTask(cfg, model, tokenizer, data, setup, teacher), ctx)
