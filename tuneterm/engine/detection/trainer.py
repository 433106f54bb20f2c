"""The detection loop: train with the model's own losses, score mAP each epoch.

It mirrors the classification Trainer (engine/loop.py): the same events ("train", "val",
"checkpoint"), one host sync per log interval, checkpoints as one plain dict (`last.pt` to
resume mid-epoch, `best.pt` by the chosen val mAP), and a stop on an optimizer-step boundary.
mAP is torchmetrics' MeanAveragePrecision on the COCO evaluator (faster-coco-eval).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import torch

from tuneterm.config import RunConfig
from tuneterm.engine import checkpoint, epochs
from tuneterm.engine.data import default_workers
from tuneterm.engine.detection.data import (
    DetData,
    DetSplit,
    Target,
    batch_count,
    batches,
    make_transform,
)
from tuneterm.engine.epochs import RunContext, Scored, State, restore_training, training_state
from tuneterm.engine.loop import (
    Timed,
    cuda_speed,
    log_train,
    optimizer_step,
    pick_device,
    pick_precision,
)
from tuneterm.engine.models import count_params
from tuneterm.engine.optim import make_optimizer, make_scheduler

MAP_BACKEND: Literal["faster_coco_eval"] = "faster_coco_eval"


def best_metric(cfg: RunConfig) -> str:
    """val_map or val_map50; train.metric's classification default (val_acc) means val_map."""
    return cfg.train.metric if cfg.train.metric in ("val_map", "val_map50") else "val_map"


class DetTrainer:
    def __init__(self, cfg: RunConfig, model: torch.nn.Module, data: DetData, ctx: RunContext):
        t = cfg.train
        self.cfg, self.ctx, self.data = cfg, ctx, data
        self.device = pick_device(t.device)
        self.amp_dtype = pick_precision(t.precision, self.device)
        self.model = model.to(self.device)
        # No autotuner: a detector's batches change shape. No channels_last: torchvision's
        # detection transform batches images in the default layout.
        cuda_speed(cfg.speed, self.device, None, fixed_shapes=False)
        self.pin = self.device.type == "cuda" and cfg.speed.pin_memory
        self.steps_per_epoch = max(1, batch_count(len(data.train), t.batch_size))
        self.total_steps = self.steps_per_epoch * t.epochs
        self.state = State()
        self.accum = t.grad_accum
        self.opt = make_optimizer(self.model, t, self.device, fused=cfg.speed.fused_optimizer)
        self.sched = make_scheduler(self.opt, t, -(-self.steps_per_epoch // self.accum) * t.epochs)
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.transform = make_transform(cfg.data.augment)
        self.streamed = data.train.images is None
        self.workers = (
            (default_workers() if cfg.data.workers < 0 else cfg.data.workers)
            if self.streamed
            else 0
        )
        self.input_streak = 0
        self.params = count_params(self.model)
        self.trainable = [p for g in self.opt.param_groups for p in g["params"]]
        self.metric = best_metric(cfg)

    def _to_device(
        self, xs: list[torch.Tensor], ts: list[Target]
    ) -> tuple[list[torch.Tensor], list[Target]]:
        dev = self.device
        images = [x.to(dev, non_blocking=True).float().div_(255) for x in xs]
        targets = [{k: v.to(dev, non_blocking=True) for k, v in t.items()} for t in ts]
        return images, targets

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- the hot path ---------------------------------------------------------------------
    def train_epoch(self) -> bool:
        """One epoch from `state.batch` on. Returns False if a stop was requested."""
        st, t = self.state, self.cfg.train
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        n_loss, seen = 0, 0
        tick = time.perf_counter()
        it = Timed(
            batches(
                self.data.train,
                t.batch_size,
                shuffle_seed=t.seed,
                epoch=st.epoch,
                start_batch=st.batch,
                transform=self.transform,
                workers=self.workers,
                pin=self.pin,
                prefetch=self.cfg.speed.prefetch,
            )
        )
        for batch in it:
            images, targets = self._to_device(*batch)
            with self._autocast():
                losses = self.model(images, targets)  # the model's own loss terms
                loss = sum(losses.values())
            self.scaler.scale(loss / self.accum).backward()
            if (st.batch + 1) % self.accum == 0 or st.batch + 1 == self.steps_per_epoch:
                optimizer_step(self)
            loss_sum += loss.detach()
            n_loss += 1
            seen += len(images)
            st.step += 1
            st.batch += 1
            if st.step % t.log_every == 0:  # the only host sync: once per log interval
                now = time.perf_counter()
                self._log((loss_sum / n_loss).item(), seen / (now - tick), it.waited / (now - tick))
                loss_sum.zero_()
                n_loss, seen, it.waited, tick = 0, 0, 0.0, now
            if self.ctx.stop_requested() and st.batch % self.accum == 0:
                return False
        if n_loss:
            span = max(time.perf_counter() - tick, 1e-9)
            self._log((loss_sum / n_loss).item(), seen / span, it.waited / span)
        return True

    def _log(self, loss: float, per_s: float, wait_frac: float) -> None:
        log_train(self, loss, per_s, wait_frac, self.opt.param_groups[0]["lr"])

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: DetSplit, full: bool = False) -> dict[str, Any]:
        return evaluate(
            self.model, split, self.data.classes, self.cfg.train.batch_size, self.device, full
        )

    # -- checkpoints ------------------------------------------------------------------------
    def model_state(self, net: torch.nn.Module | None = None) -> dict[str, Any]:
        tr: Any = self.model.transform
        return {
            "model": self.model.state_dict(),
            "task": "detect",
            "model_name": self.cfg.model.name,
            "num_classes": len(self.data.classes),
            "classes": self.data.classes,
            "min_size": int(tr.min_size[0]),
            "max_size": int(tr.max_size),
            "detections": self.cfg.detect.detections,
            "mean": [float(v) for v in tr.image_mean],
            "std": [float(v) for v in tr.image_std],
        }

    def last_state(self) -> dict[str, Any] | None:
        return {**self.model_state(), **training_state(self), "rng": checkpoint.rng_state()}

    def restore(self, path: Path) -> None:
        ck = checkpoint.load(path)
        self.model.load_state_dict(ck["model"])
        restore_training(self, ck)
        checkpoint.set_rng_state(ck["rng"])

    # -- the run (engine/epochs.py) ----------------------------------------------------------
    def validate(self) -> Scored:
        val = self.evaluate(self.data.val)
        return Scored(
            event={"val_map": val["map"], "val_map50": val["map50"], "val_map75": val["map75"]},
            metric=self.metric,
            value=val["map"] if self.metric == "val_map" else val["map50"],
            best={"val_map": val["map"], "val_map50": val["map50"]},
        )

    def barrier(self) -> None:
        pass  # one process

    def fit(self) -> str:
        """Train to the end or until stopped; returns "completed" or "stopped"."""
        return epochs.fit(self)

    def test(self) -> dict[str, Any]:
        """Score the best checkpoint on the test split (val if there is no test split)."""
        best, split, name = epochs.load_best(self)
        res = self.evaluate(split, full=True)
        return {"split": name, **res, "epoch": best["best"]["epoch"]}


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
