"""The text-classification loop: the image Trainer's shape (hot path in one screen, one host
sync per log interval, resumable mid-epoch, best/last checkpoints as plain dicts), with token
batches and macro-F1."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tuneterm.config import RunConfig
from tuneterm.engine import checkpoint, epochs
from tuneterm.engine.data import batch_indices
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
from tuneterm.engine.techniques import Techniques
from tuneterm.engine.textcls.data import TextData, TextSplit, batches
from tuneterm.engine.textcls.models import TextClassifier

METRIC_KEY = {"val_acc": "acc", "val_loss": "loss", "val_f1": "f1"}


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


class TextTrainer:
    def __init__(
        self,
        cfg: RunConfig,
        model: TextClassifier,
        tokenizer: Any,
        data: TextData,
        ctx: RunContext,
        teacher: torch.nn.Module | None = None,
    ) -> None:
        t = cfg.train
        self.cfg, self.ctx, self.data = cfg, ctx, data
        self.device = pick_device(t.device)
        self.amp_dtype = pick_precision(t.precision, self.device)
        self.head_name = model.head_name
        self.model: TextClassifier = model.to(self.device)
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.length = cfg.text.max_length if cfg.text.padding == "max_length" else None
        self.steps_per_epoch = max(1, len(batch_indices(len(data.train), t.batch_size, None)))
        self.total_steps = self.steps_per_epoch * t.epochs
        self.state = State()
        self.tech = Techniques(cfg)
        distill = self.tech.get("distill")
        if distill is not None:  # a text teacher, loaded by the task (the technique's own
            distill.teacher = teacher  # type: ignore[attr-defined]  # loader is for images)
        self.tech.setup(self)  # type: ignore[arg-type]  # freezing, adapters, teacher
        self.model.to(self.device)
        self.opt = make_optimizer(
            self.model,
            t,
            self.device,
            self.head_name,
            include_frozen=cfg.freeze.strategy == "gradual",
            extra=self.tech.param_groups(self),  # type: ignore[arg-type]
            fused=cfg.speed.fused_optimizer,
        )
        self.accum = t.grad_accum
        self.sched = make_scheduler(self.opt, t, -(-self.steps_per_epoch // self.accum) * t.epochs)
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.params = count_params(self.model)
        self.trainable = [p for g in self.opt.param_groups for p in g["params"]]
        sp = cfg.speed
        cuda_speed(sp, self.device, None, fixed_shapes=self.length is not None)
        self.pin = self.device.type == "cuda" and sp.pin_memory
        # The training forward, compiled when asked; the module stays plain for checkpoints.
        self.forward: Any = self.model
        if sp.compile != "off":
            self.forward = torch.compile(self.model, mode=sp.compile)
        self.streamed, self.workers, self.input_streak = False, 0, 0  # tokenized once, in RAM

    def count_params(self) -> dict[str, Any]:
        return count_params(self.model)

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _batches(self, split: TextSplit, size: int, **kw: Any) -> Any:
        return batches(split, size, self.pad_id, self.length, **kw)

    # -- the hot path ---------------------------------------------------------------------
    def train_epoch(self) -> bool:
        """One epoch from `state.batch` on. Returns False if a stop was requested."""
        st, t, tech = self.state, self.cfg.train, self.tech
        self.model.train()
        tech.epoch_start(self)  # type: ignore[arg-type]  # gradual unfreezing
        loss_sum = torch.zeros((), device=self.device)
        n_loss, seen, tick = 0, 0, time.perf_counter()
        it = Timed(
            self._batches(
                self.data.train,
                t.batch_size,
                shuffle_seed=t.seed,
                epoch=st.epoch,
                start_batch=st.batch,
            )
        )
        for batch in it:
            x, y = self._to_device(*batch)
            with self._autocast():
                logits = self.forward(x)
                ce = F.cross_entropy(logits, y, label_smoothing=t.label_smoothing)
                loss = tech.loss(self, x, y, logits, ce)  # type: ignore[arg-type]
            self.scaler.scale(loss / self.accum).backward()
            if (st.batch + 1) % self.accum == 0 or st.batch + 1 == self.steps_per_epoch:
                optimizer_step(self)
            loss_sum += loss.detach()
            n_loss, seen = n_loss + 1, seen + len(y)
            st.step, st.batch = st.step + 1, st.batch + 1
            if st.step % t.log_every == 0:  # the only host sync: once per log interval
                span = max(time.perf_counter() - tick, 1e-9)
                self._log((loss_sum / n_loss).item(), seen / span, it.waited / span)
                loss_sum.zero_()
                n_loss, seen, it.waited, tick = 0, 0, 0.0, time.perf_counter()
            if self.ctx.stop_requested() and st.batch % self.accum == 0:
                return False  # on an optimizer-step boundary
        if n_loss:
            span = max(time.perf_counter() - tick, 1e-9)
            self._log((loss_sum / n_loss).item(), seen / span, it.waited / span)
        return True

    def _to_device(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pin:  # page-locked, so the copies below do not block the host
            xb, yb = xb.pin_memory(), yb.pin_memory()
        return xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)

    def _log(self, loss: float, per_s: float, wait_frac: float) -> None:
        log_train(self, loss, per_s, wait_frac, self.opt.param_groups[-1]["lr"])

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: TextSplit) -> dict[str, Any]:
        self.model.eval()
        k = len(self.data.classes)
        conf = torch.zeros(k, k, dtype=torch.long, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        for xb, yb in self._batches(split, self.cfg.train.batch_size * 2):
            x, y = xb.to(self.device), yb.to(self.device)
            with self._autocast():
                logits = self.model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            conf += torch.bincount(y * k + logits.argmax(1), minlength=k * k).view(k, k)
        conf_np = conf.cpu().numpy()
        n = int(conf_np.sum())
        out = scores(conf_np, self.data.classes)
        out.update(loss=loss_sum.item() / max(n, 1), n=n, confusion=conf_np.tolist())
        return out

    # -- checkpoints ------------------------------------------------------------------------
    def model_state(self, net: torch.nn.Module | None = None) -> dict[str, Any]:
        weights = self.model.state_dict()
        lora = self.cfg.lora.enabled
        if lora:  # adapters and everything outside the base model (the head); the base is shared
            base = self.model.base_name + "."
            weights = {k: v for k, v in weights.items() if "lora_" in k or not k.startswith(base)}
        return {
            "model": weights,
            "task": self.cfg.run.task,
            "classes": self.data.classes,
            "num_classes": len(self.data.classes),
            "text": self.cfg.text.model_dump(),
            "pretrained": self.cfg.model.weights != "none",
            "partial": lora,
            **({"lora": self.cfg.lora.model_dump()} if lora else {}),
        }

    def last_state(self) -> dict[str, Any] | None:
        return {
            **self.model_state(),
            **training_state(self),
            "rng": checkpoint.rng_state(),
            "techniques": self.tech.state_dict(),
        }

    def restore(self, path: Path) -> None:
        ck = checkpoint.load(path)
        self.model.load_state_dict(ck["model"], strict=not ck.get("partial"))
        self.tech.load_state_dict(ck.get("techniques", {}))
        restore_training(self, ck)
        checkpoint.set_rng_state(ck["rng"])

    # -- the run (engine/epochs.py) ----------------------------------------------------------
    def validate(self) -> Scored:
        val = self.evaluate(self.data.val)
        stop = self.tech.epoch_end(self, val)  # type: ignore[arg-type]  # early stopping
        metric = self.cfg.train.metric
        return Scored(
            event={"val_loss": val["loss"], "val_acc": val["acc"], "val_f1": val["f1"]},
            metric=metric,
            value=val[METRIC_KEY[metric]],
            best={"val_acc": val["acc"], "val_loss": val["loss"], "val_f1": val["f1"]},
            higher=metric != "val_loss",
            stop=stop,
        )

    def barrier(self) -> None:
        pass  # one process

    def fit(self) -> str:
        """Train to the end or until stopped; returns "completed" or "stopped"."""
        return epochs.fit(self)

    def test(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on the test split (val if there is no test split)."""
        best, split, name = epochs.load_best(self)
        res = self.evaluate(split)
        per_class = {c: r["recall"] for c, r in res["report"].items()}  # per-class accuracy
        return {"split": name, "epoch": best["best"]["epoch"], "per_class": per_class, **res}
