"""tuneterm's engine against a bare PyTorch loop on the same fine-tune (issue 6, part 1).

    python bench/engine_overhead.py                    # resnet18, digits 32 px, 3 rounds
    python bench/engine_overhead.py --rounds 5 --epochs 3 --size 48
    python bench/engine_overhead.py --device cuda      # on a GPU machine
    python bench/engine_overhead.py --variant every-epoch:checkpoint_budget=0   # + a variant

Each round runs the same fine-tune twice (or more, with variants), the order rotating, each
in a fresh process:

- **engine**: `tuneterm.runs.launcher.start` on a real run folder: the detached engine with its
  event queue, checkpoints (last.pt and best.pt, at the default `speed.checkpoint_budget`,
  always at the last epoch), meta.json updates and the system sampler all on. Its time is read
  from its own events: from the `running` status to the last epoch's `checkpoint` event (so it
  includes every epoch's validation and every checkpoint write). Each round also prints the
  time from each written epoch's `val` event to its `checkpoint` event: the writes.
- **tuned**: a minimal hand-written loop (below, ~30 lines) as a careful engineer writes it:
  fused AdamW wherever torch has the kernel for the device, the same data tensors, model,
  head, schedule, batch size, epochs and per-epoch validation; no events, no checkpoints, no
  sampling. Timed from its first batch to the end of its last validation. Every ratio is
  taken against this side, so none flatters the engine.
- **bare**: the same loop with PyTorch's default AdamW (the per-parameter loop on a CPU).

Per round: img/s over the span timed (engine: `running` to its last `val` event), the
steady-state img/s (epochs 2.., from the engine's own events, runs/timing.py, and the loops'
per-epoch timings), and the engine's extra work (checkpoints, test) on a line of its own.
Goal: steady-state engine/tuned >= 0.97. Sides alternate, so machine noise hits each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuneterm.config import RunConfig
from tuneterm.runs import launcher
from tuneterm.runs.timing import timing
from tuneterm.store.events import read_all
from tuneterm.store.runs import RunStore

BARE = r"""
import json, sys, time, math
import torch, torchvision
from torch.nn import functional as F
from tuneterm.config import RunConfig
from tuneterm.engine.data import epoch_order
from tuneterm.engine.kinds.classify.data import build

cfg = RunConfig.model_validate(json.loads(sys.argv[1]))
t = cfg.train
if t.threads:
    torch.set_num_threads(t.threads)
torch.manual_seed(t.seed)
data = build(cfg.data, t.seed)
device = torch.device("cuda" if t.device == "cuda" else "cpu")
model = getattr(torchvision.models, cfg.model.name)(weights=None)
model.fc = torch.nn.Linear(model.fc.in_features, len(data.classes))
model.to(device)
# "default": PyTorch's default AdamW (the per-parameter loop on a CPU); "tuned": what a careful
# engineer writes, the fused kernel wherever torch has one for the device.
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices as fused_devices
fast = {"fused": True} if sys.argv[2] == "tuned" and device.type in fused_devices() else {}
opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, **fast)
n = len(data.train)
steps = (n // t.batch_size + (n % t.batch_size > 1)) * t.epochs
cosine = lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1)))
sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255
x_train, y_train = data.train.images, data.train.labels
x_val, y_val = data.val.images, data.val.labels
start = time.perf_counter()
train_s = []
for epoch in range(t.epochs):
    model.train()
    began = time.perf_counter()
    for idx in epoch_order(n, t.seed, epoch).split(t.batch_size):
        if len(idx) < 2:
            continue
        x = (x_train[idx].to(device).float() - mean) / std
        loss = F.cross_entropy(model(x), y_train[idx].to(device))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
    loss_value = loss.item()  # the epoch's steps done (a host sync on a GPU)
    train_s.append(time.perf_counter() - began)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y_val), t.batch_size * 2):
            x = (x_val[i : i + t.batch_size * 2].to(device).float() - mean) / std
            correct += (model(x).argmax(1).cpu() == y_val[i : i + t.batch_size * 2]).sum().item()
    acc = correct / len(y_val)
    print(f"epoch {epoch + 1} loss {loss_value:.4f} val_acc {acc:.4f}", file=sys.stderr)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "images": n * t.epochs, "train_s": train_s, "n": n}))
"""


def config(args: argparse.Namespace) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"name": args.model, "weights": "none"},
            "data": {"dataset": "digits", "image_size": args.size},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch,
                "lr": 1e-3,
                "device": args.device,
                "threads": args.threads,
            },
        }
    )


def steady(train_s: list[float], n: int) -> float:
    """Steady-state examples/s: the training of epochs 2.. (epoch 1 pays the warm-up)."""
    spans = train_s[1:] or train_s
    return n * len(spans) / sum(spans)


def run_engine(cfg: RunConfig, root: Path) -> dict[str, Any]:
    store = RunStore(root)
    info = launcher.start(store, cfg)
    while store.info(info.id).meta.status not in ("completed", "failed", "stopped"):  # type: ignore[union-attr]
        time.sleep(0.5)
    events = read_all(store.run_dir(info.id) / "events")
    status = store.info(info.id).meta.status  # type: ignore[union-attr]
    if status != "completed":
        raise SystemExit(f"engine run {info.id} ended {status}: see {store.run_dir(info.id)}")
    return engine_figures(events, cfg)


def engine_figures(events: list[dict[str, Any]], cfg: RunConfig) -> dict[str, Any]:
    """A finished engine run's figures, from its own events (runs/timing.py's parts)."""
    running = next(e["t"] for e in events if e["kind"] == "status" and e["status"] == "running")
    last_val = max(e["t"] for e in events if e["kind"] == "val")
    n = next(e["train"] for e in events if e["kind"] == "data")
    tm = timing(events)
    part = {p.name: p.seconds for p in tm.parts}
    epochs = cfg.train.epochs
    train_s = [part.get(f"train epoch {k}", 0.0) for k in range(1, epochs + 1)]
    train_s[0] += part.get("first step", 0.0)
    # The engine's work a bare loop does not do, each apart: checkpoint writes on the wall,
    # those in the background (off the wall), and the test evaluation.
    ckpt = sum(s for name, s in part.items() if name.startswith("checkpoint"))
    return {
        # running -> the last validation: the same span the bare loop times
        "seconds": last_val - running,
        "images": n * epochs,
        "steady": steady(train_s, n),
        "first": part.get("first step", 0.0),
        "val": sum(s for name, s in part.items() if name.startswith("val epoch")),
        "checkpoints": ckpt,
        "background_checkpoints": sum(p.seconds for p in tm.background),
        "test": part.get("test", 0.0),
        "impl": tm.optimizer_impl,
        "timing": tm,
    }


def run_bare(cfg: RunConfig, flavour: str) -> dict[str, Any]:
    """The bare loop in a fresh process: `flavour` "default" (PyTorch's default AdamW) or
    "tuned" (fused AdamW where torch has the kernel)."""
    out = subprocess.run(
        [sys.executable, "-c", BARE, json.dumps(cfg.model_dump()), flavour],
        capture_output=True,
        text=True,
        check=True,
    )
    got = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    got["steady"] = steady(got["train_s"], got["n"])
    return got


BARE_SIDES = {"bare": "default", "tuned": "tuned"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="also run the engine with these [speed] settings, e.g. "
        '"every-epoch:checkpoint_budget=0" or "bg:async_checkpoint=on" (repeatable)',
    )
    args = ap.parse_args()
    os.environ.setdefault("TUNETERM_OFFLINE", "1")
    cfg = config(args)
    sides = ["engine", "tuned", "bare"]
    cfgs = dict.fromkeys(sides, cfg)
    settings: dict[str, dict[str, str]] = {}
    for spec in args.variant:
        name, _, pairs = spec.partition(":")
        if not name or name in cfgs:
            raise SystemExit(f"--variant {spec!r}: give it a new name (not engine, tuned or bare)")
        settings[name] = dict(kv.split("=", 1) for kv in pairs.split(",") if kv)
        speed = {**cfg.speed.model_dump(), **settings[name]}
        cfgs[name] = cfg.model_copy(update={"speed": type(cfg.speed).model_validate(speed)})
        sides.append(name)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    steadies: dict[str, list[float]] = {side: [] for side in sides}
    print(
        f"{'round':>5} {'order':>24} "
        + " ".join(f"{s + ' img/s':>12}" for s in sides)
        + " "
        + " ".join(f"{s + '/tuned':>13}" for s in sides if s != "tuned")
    )
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]  # rotate who goes first
            got: dict[str, dict[str, Any]] = {}
            for side in order:
                c = cfgs[side]
                got[side] = (
                    run_bare(c, BARE_SIDES[side])
                    if side in BARE_SIDES
                    else run_engine(c, Path(tmp))
                )
            row = {side: got[side]["images"] / got[side]["seconds"] for side in sides}
            for side in sides:
                rates[side].append(row[side])
                steadies[side].append(got[side]["steady"])
            line = f"{r + 1:>5} {'/'.join(order):>24} " + " ".join(
                f"{row[s]:>12.1f}" for s in sides
            )
            line += " " + " ".join(f"{row[s] / row['tuned']:>13.3f}" for s in sides if s != "tuned")
            print(line, flush=True)
            e = got["engine"]
            print(
                f"      engine ({e['impl']} optimizer step): steady img/s {e['steady']:.1f} vs "
                f"tuned {got['tuned']['steady']:.1f} = {e['steady'] / got['tuned']['steady']:.3f}"
                f"; running->first step {e['first']:.2f} s, validation {e['val']:.2f} s",
                flush=True,
            )
            print(
                f"      engine's extra work: checkpoints on the wall {e['checkpoints']:.2f} s, "
                f"in the background {e['background_checkpoints']:.2f} s (off the wall); "
                f"test evaluation {e['test']:.2f} s (after the span timed)",
                flush=True,
            )

    def ratio(side: str, of: dict[str, list[float]]) -> float:
        return statistics.median(a / b for a, b in zip(of[side], of["tuned"], strict=True))

    print()
    for side in [s for s in sides if s != "tuned"]:
        what = (
            "PyTorch's default AdamW loop"
            if side == "bare"
            else "engine"
            if side == "engine"
            else f"engine {side}"
        )
        if side in settings:
            what += f" ({settings[side]})"
        print(
            f"{what}/tuned loop: steady-state img/s {ratio(side, steadies):.3f}"
            + (" (goal >= 0.97)" if side == "engine" else "")
            + f", running->last validation img/s {ratio(side, rates):.3f}"
        )
    print(
        "median img/s: "
        + ", ".join(f"{s} {statistics.median(rates[s]):.1f}" for s in sides)
        + "; steady: "
        + ", ".join(f"{s} {statistics.median(steadies[s]):.1f}" for s in sides)
    )
    print(
        f"{args.model} {args.size}px batch {args.batch}, "
        f"{args.epochs} epochs, device {args.device}, threads {args.threads or 'all'}; "
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.node()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
