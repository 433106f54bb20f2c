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
- **bare**: a minimal hand-written loop (below, ~30 lines): same data tensors, model, head,
  optimizer, schedule, batch size, epochs and per-epoch validation; no events, no
  checkpoints, no sampling. Timed from its first batch to the end of its last validation.

It prints both throughputs per round and the ratio engine / bare (goal: >= 0.97). These are
ratios measured in the same run, alternating, so machine noise hits both sides.
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

from tuneterm.config import RunConfig
from tuneterm.runs import launcher
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
opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
n = len(data.train)
steps = (n // t.batch_size + (n % t.batch_size > 1)) * t.epochs
cosine = lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1)))
sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255
x_train, y_train = data.train.images, data.train.labels
x_val, y_val = data.val.images, data.val.labels
start = time.perf_counter()
for epoch in range(t.epochs):
    model.train()
    for idx in epoch_order(n, t.seed, epoch).split(t.batch_size):
        if len(idx) < 2:
            continue
        x = (x_train[idx].to(device).float() - mean) / std
        loss = F.cross_entropy(model(x), y_train[idx].to(device))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y_val), t.batch_size * 2):
            x = (x_val[i : i + t.batch_size * 2].to(device).float() - mean) / std
            correct += (model(x).argmax(1).cpu() == y_val[i : i + t.batch_size * 2]).sum().item()
    acc = correct / len(y_val)
    print(f"epoch {epoch + 1} loss {loss.item():.4f} val_acc {acc:.4f}", file=sys.stderr)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "images": n * t.epochs}))
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


def run_engine(cfg: RunConfig, root: Path) -> dict[str, float]:
    store = RunStore(root)
    info = launcher.start(store, cfg)
    while store.info(info.id).meta.status not in ("completed", "failed", "stopped"):  # type: ignore[union-attr]
        time.sleep(0.5)
    events = read_all(store.run_dir(info.id) / "events")
    status = store.info(info.id).meta.status  # type: ignore[union-attr]
    if status != "completed":
        raise SystemExit(f"engine run {info.id} ended {status}: see {store.run_dir(info.id)}")
    running = next(e["t"] for e in events if e["kind"] == "status" and e["status"] == "running")
    last_ckpt = max(e["t"] for e in events if e["kind"] == "checkpoint" and e["which"] == "epoch")
    n = next(e["train"] for e in events if e["kind"] == "data")
    # From each epoch's "val" event to its "checkpoint" event: with checkpoints written in
    # place, the time the writes took (in the background, the time until they were on disk).
    val_t = {e["epoch"]: e["t"] for e in events if e["kind"] == "val"}
    writes = sum(
        e["t"] - val_t[e["epoch"]]
        for e in events
        if e["kind"] == "checkpoint" and e["which"] == "epoch"
    )
    # Where the rest goes: from `running` to the first train event (the first log interval,
    # with cuDNN autotuning and lazy CUDA set-up), and each epoch's last train event to its
    # val event (the end of the epoch's steps plus validation).
    trains = [e for e in events if e["kind"] == "train"]
    first = trains[0]["t"] - running if trains else 0.0
    val = sum(
        t - max((e["t"] for e in trains if e["epoch"] == ep), default=t) for ep, t in val_t.items()
    )
    return {
        "seconds": last_ckpt - running,
        "images": n * cfg.train.epochs,
        "writes": writes,
        "first": first,
        "val": val,
    }


def run_bare(cfg: RunConfig) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", BARE, json.dumps(cfg.model_dump())],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


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
    sides = ["engine", "bare"]
    cfgs = {"engine": cfg, "bare": cfg}
    settings: dict[str, dict[str, str]] = {}
    for spec in args.variant:
        name, _, pairs = spec.partition(":")
        if not name or name in cfgs:
            raise SystemExit(f"--variant {spec!r}: give it a new name (not engine or bare)")
        settings[name] = dict(kv.split("=", 1) for kv in pairs.split(",") if kv)
        speed = {**cfg.speed.model_dump(), **settings[name]}
        cfgs[name] = cfg.model_copy(update={"speed": type(cfg.speed).model_validate(speed)})
        sides.append(name)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    head = f"{'round':>5} {'order':>18} " + " ".join(f"{s + ' img/s':>12}" for s in sides)
    print(head + f" {'engine/bare':>11}" + "".join(f" {s + '/bare':>14}" for s in sides[2:]))
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]  # rotate who goes first
            got = {}
            for side in order:
                c = cfgs[side]
                got[side] = run_bare(c) if side == "bare" else run_engine(c, Path(tmp))
            row = {side: got[side]["images"] / got[side]["seconds"] for side in sides}
            for side in sides:
                rates[side].append(row[side])
            line = f"{r + 1:>5} {'/'.join(order):>18} " + " ".join(
                f"{row[s]:>12.1f}" for s in sides
            )
            line += f" {row['engine'] / row['bare']:>11.3f}"
            line += "".join(f" {row[s] / row['bare']:>14.3f}" for s in sides[2:])
            e = got["engine"]
            line += f"   (engine {e['seconds']:.2f} s, of which val->checkpoint "
            line += f"{e['writes']:.2f} s, running->first train event {e['first']:.2f} s, "
            line += f"last train event->val {e['val']:.2f} s)"
            print(line, flush=True)
    ratios = [e / b for e, b in zip(rates["engine"], rates["bare"], strict=True)]
    print(
        f"\nmedian ratio engine/bare: {statistics.median(ratios):.3f} (goal >= 0.97); "
        f"median img/s engine {statistics.median(rates['engine']):.1f}, bare "
        f"{statistics.median(rates['bare']):.1f}"
    )
    # Noise on a shared machine only ever slows a run down, so the fastest of N runs is the
    # least disturbed one (timeit's rule); the ratio of the best throughputs is the steadier.
    print(
        f"best-of-{args.rounds} ratio engine/bare: "
        f"{max(rates['engine']) / max(rates['bare']):.3f} "
        f"(img/s engine {max(rates['engine']):.1f}, bare {max(rates['bare']):.1f})"
    )
    for side in sides[2:]:
        rel = [s / b for s, b in zip(rates[side], rates["bare"], strict=True)]
        best = max(rates[side]) / max(rates["bare"])
        print(
            f"engine {side} ({settings[side]})/bare: "
            "median ratio "
            f"{statistics.median(rel):.3f}, best-of ratio {best:.3f}"
        )
    print(
        f"{args.model} {args.size}px batch {args.batch}, "
        f"{args.epochs} epochs, device {args.device}, threads {args.threads or 'all'}; "
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.node()}, {os.cpu_count()} cpus"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
