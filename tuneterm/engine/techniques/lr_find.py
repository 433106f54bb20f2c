"""LR range test (Smith 2017): raise the lr exponentially each step and record the loss.

The run's own data, model and techniques (freezing, head, LoRA) are used; nothing is saved.
A good lr is usually a little below where the smoothed loss falls fastest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tuneterm.config import RunConfig


@dataclass
class LrFind:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float


class _Quiet:
    def __init__(self, ckpt_dir: Path) -> None:
        self.ckpt_dir = ckpt_dir

    def emit(self, kind: str, /, **fields: Any) -> None:
        pass

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return False


def lr_find(
    cfg: RunConfig,
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 60,
    init: Path | None = None,
    runs_root: Path | None = None,
) -> LrFind:
    from tuneterm.engine.kinds.classify.data import batches, build
    from tuneterm.engine.kinds.classify.models import build_model
    from tuneterm.engine.kinds.classify.task import trainer

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    cfg = cfg.model_copy(deep=True)
    cfg.train.scheduler = "none"
    cfg.train.warmup_steps = 0
    data = build(cfg.data, cfg.train.seed)
    built = build_model(cfg.model, len(data.classes), init, cfg.head)
    tr = trainer(cfg, built, data, _Quiet((runs_root or Path(".")) / "lr-find"), init)
    factor = (end / start) ** (1 / max(1, steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    epoch = 0
    tr.model.train()
    tr.tech.epoch_start(tr)
    while len(lrs) < steps:
        for xb, yb in batches(
            data.train, cfg.train.batch_size, cfg.data.image_size, shuffle_seed=0, epoch=epoch
        ):
            lr = start * factor ** len(lrs)
            for g in tr.opt.param_groups:
                g["lr"] = lr
            x, y = tr.tech.batch(*tr.to_device((xb, yb)))
            loss, logits = tr.task.loss(tr.model, x, y)
            loss = tr.tech.loss(tr, x, y, logits, loss)
            tr.opt.zero_grad(set_to_none=True)
            loss.backward()
            tr.opt.step()
            value = loss.item()  # one sync per step is fine here: this is not a training run
            avg = 0.98 * avg + 0.02 * value  # from 0, so the bias correction is exact
            smooth = avg / (1 - 0.98 ** (len(lrs) + 1))
            lrs.append(lr)
            losses.append(smooth)
            best = min(best, smooth)
            if len(lrs) >= steps or smooth > 4 * best or not math.isfinite(smooth):
                return LrFind(lrs, losses, _suggest(lrs, losses))
        epoch += 1
    return LrFind(lrs, losses, _suggest(lrs, losses))


def _suggest(lrs: list[float], losses: list[float]) -> float:
    """The lr where the smoothed loss falls fastest (steepest negative slope in log lr)."""
    if len(lrs) < 3:
        return lrs[0] if lrs else 0.0
    slopes = [
        (losses[i + 1] - losses[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1]))
        for i in range(1, len(lrs) - 1)
    ]
    i = min(range(len(slopes)), key=slopes.__getitem__)
    return lrs[i + 1]


def plot(result: LrFind, width: int = 80, height: int = 20) -> str:
    """Loss against lr (log scale) as terminal text, with plotext."""
    import plotext as plt

    plt.clear_figure()
    plt.plot_size(width, height)
    plt.xscale("log")
    plt.plot(result.lrs, result.losses, marker="braille")
    plt.vline(result.suggestion)
    plt.title(f"LR range test: suggested lr {result.suggestion:.2e}")
    plt.xlabel("lr")
    plt.ylabel("loss (smoothed)")
    out: str = plt.build()
    return out
