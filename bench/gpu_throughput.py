"""Training throughput on a GPU, three ways (issue 6, part 4). Skips cleanly without CUDA.

    python bench/gpu_throughput.py                       # resnet50 and vit_b_16, 224 px, bf16
    python bench/gpu_throughput.py --models resnet50 --batch 256 --steps 60
    python bench/gpu_throughput.py --device cpu --models resnet18 --size 32 --batch 32 \
        --steps 6 --images 256                          # a smoke test of the code paths on a CPU

For each model it reports img/s:

- **compute**: synthetic input already on the device, the model's training step only (the
  compute limit: AMP, channels_last for convnets, fused AdamW);
- **bare**: a hand-written loop over an in-memory uint8 data set in pinned host memory, copied
  non-blocking and normalised on the device: what a careful user writes by hand;
- **tuneterm**: the engine's own `Trainer` (engine/trainer.py) with its config defaults for the
  device, events written to a real event queue, over the same in-memory data set.

and the ratios tuneterm / compute (goal >= 0.9) and tuneterm / bare (goal >= 1.0). Timings
start after warm-up steps (cudnn autotuning, allocator growth) and end with a device sync.
NVIDIA's published ResNet-50 AMP training figure on one A100 is 2,470 img/s.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from tuneterm.config import RunConfig
from tuneterm.engine.kinds.classify.data import DataBundle, Split
from tuneterm.engine.kinds.classify.models import build_model
from tuneterm.engine.kinds.classify.task import trainer as Trainer
from tuneterm.store.events import EventWriter


class Ctx:
    """The loop's RunContext over a real event queue in a temp folder."""

    def __init__(self, root: Path) -> None:
        self.ckpt_dir = root / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.writer = EventWriter(root / "events")

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.writer.emit(kind, **fields)

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dataset(n: int, size: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    return x, torch.randint(0, classes, (n,), generator=gen)


def make_model(name: str, classes: int, device: torch.device, convnet: bool) -> torch.nn.Module:
    import torchvision

    model = torchvision.models.get_model(name, weights=None, num_classes=classes).to(device)
    if device.type == "cuda" and convnet:
        model = model.to(memory_format=torch.channels_last)
    return model


def amp(device: torch.device) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def compute_only(args: argparse.Namespace, name: str, device: torch.device) -> float:
    convnet = not name.startswith("vit")
    model = make_model(name, 10, device, convnet)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if device.type == "cuda" and convnet:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def step() -> None:
        with amp(device):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    return args.batch * args.steps / (time.perf_counter() - t0)


def bare(args: argparse.Namespace, name: str, device: torch.device) -> float:
    convnet = not name.startswith("vit")
    model = make_model(name, 10, device, convnet)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    xs, ys = dataset(args.images, args.size, 10)
    if device.type == "cuda":
        xs, ys = xs.pin_memory(), ys.pin_memory()
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255
    n_batches = args.images // args.batch
    done, t0 = 0, 0.0
    while done < args.warmup + args.steps:
        for b in torch.randperm(n_batches).tolist():
            if done == args.warmup:
                sync(device)
                t0 = time.perf_counter()
            if done == args.warmup + args.steps:
                break
            sl = slice(b * args.batch, (b + 1) * args.batch)
            x = xs[sl].to(device, non_blocking=True)
            y = ys[sl].to(device, non_blocking=True)
            x = (x.float() - mean) / std
            if device.type == "cuda" and convnet:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp(device):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
    sync(device)
    return args.batch * args.steps / (time.perf_counter() - t0)


def through_trainer(args: argparse.Namespace, name: str, device: torch.device) -> float:
    xs, ys = dataset(args.images, args.size, 10)
    small = Split(ys[: args.batch], xs[: args.batch])
    bundle = DataBundle(
        [str(i) for i in range(10)], Split(ys, xs), small, small, {"train": len(ys)}
    )
    cfg = RunConfig.model_validate(
        {
            "model": {"name": name, "weights": "none"},
            "data": {"image_size": args.size, "workers": 0},
            "train": {
                "batch_size": args.batch,
                "device": str(device),
                "epochs": 1_000,
                "log_every": 20,
            },
        }
    )
    built = build_model(cfg.model, 10, None, cfg.head)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Ctx(Path(tmp))
        trainer = Trainer(cfg, built, bundle, ctx)
        # Time whole epochs of the real train_epoch, after one warm-up epoch.
        per_epoch = len(ys) // args.batch
        trainer.train_epoch()
        trainer.state.epoch, trainer.state.batch = 1, 0
        sync(device)
        t0 = time.perf_counter()
        steps = 0
        while steps < args.steps:
            trainer.train_epoch()
            trainer.state.epoch, trainer.state.batch = trainer.state.epoch + 1, 0
            steps += per_epoch
        sync(device)
        rate = args.batch * steps / (time.perf_counter() - t0)
        ctx.writer.close()
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet50", "vit_b_16"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--images", type=int, default=4096, help="in-memory data set size")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device here: skipped (pass --device cpu for a smoke test)")
        return 0
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.machine()})"
    )
    print(
        f"{where}; torch {torch.__version__}; {args.size}px batch {args.batch}, "
        f"{args.steps} timed steps after {args.warmup} warm-up"
    )
    print(f"{'model':<12} {'compute':>9} {'bare':>9} {'tuneterm':>9} {'/compute':>9} {'/bare':>7}")
    for name in args.models:
        c = compute_only(args, name, device)
        b = bare(args, name, device)
        t = through_trainer(args, name, device)
        print(f"{name:<12} {c:>9.1f} {b:>9.1f} {t:>9.1f} {t / c:>9.3f} {t / b:>7.3f}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
