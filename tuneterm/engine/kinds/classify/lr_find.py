"""LR range test (Smith 2017) of a classify config: raise the lr exponentially each step and
record the loss.

The run's own data, model and techniques (freezing, head, LoRA) are used; nothing is saved.
A good lr is usually a little below where the smoothed loss falls fastest. `tuneterm lr-find`
runs this module in a process of its own (runs/lr_find.py), as it runs the engine,
and draws the curve it prints as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tuneterm.config import RunConfig, load
from tuneterm.engine.epochs import QuietContext
from tuneterm.engine.kinds.classify.data import batches, build
from tuneterm.engine.kinds.classify.models import build_model
from tuneterm.engine.kinds.classify.task import trainer
from tuneterm.engine.registry import resolve_init
from tuneterm.store.runs import RunStore


@dataclass
class LrFind:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float


def lr_find(
    cfg: RunConfig,
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 60,
    init: Path | None = None,
    runs_root: Path | None = None,
) -> LrFind:
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    cfg = cfg.model_copy(deep=True)
    cfg.train.scheduler = "none"
    cfg.train.warmup_steps = 0
    data = build(cfg.data, cfg.train.seed)
    built = build_model(cfg.model, len(data.classes), init, cfg.head)
    tr = trainer(cfg, built, data, QuietContext((runs_root or Path(".")) / "lr-find"), init)
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


def main(argv: list[str] | None = None) -> int:
    """`python -m tuneterm.engine.kinds.classify.lr_find CONFIG RUNS_ROOT`: the curve as one
    JSON object on stdout (the config is checked by the caller, as for a run)."""
    ap = argparse.ArgumentParser(prog="python -m tuneterm.engine.kinds.classify.lr_find")
    ap.add_argument("config")
    ap.add_argument("runs_root")
    ap.add_argument("--start", type=float, default=1e-6)
    ap.add_argument("--end", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args(argv)
    cfg = load(args.config)
    root = Path(args.runs_root)
    init = resolve_init(cfg, RunStore(root))
    result = lr_find(cfg, args.start, args.end, args.steps, init, root)
    json.dump(asdict(result), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
