"""Data-parallel scaling on this machine's CPU: one engine process (1 or 2 threads) vs.
`train.gpus = 2` (torchrun + DDP over gloo), the same config, through the real launcher.

    python bench/ddp_scaling.py            # prints a table; ~2-4 minutes on 2 cores

Throughput is the mean `examples_s` of the train events after the first epoch (the first steps
include start-up); for the DDP run `examples_s` is summed over both ranks by the engine. On a
2-core CPU each DDP process gets one core (train.threads = 1), so the ratio says how much DDP's
gradient all-reduce and the extra process cost, not what 2 GPUs would give. GPU figures need
a GPU machine: run the same script there with train.device left at auto.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from tuneterm.config import loads
from tuneterm.runs import launcher
from tuneterm.store.runs import RunStore

CONFIG = """
[model]
name = "resnet18"
weights = "none"
[data]
dataset = "digits"
image_size = {size}
per_class = {per_class}
[train]
epochs = {epochs}
batch_size = 32
log_every = 2
threads = {threads}
gpus = {gpus}
"""


def _run(
    store: RunStore, gpus: int, threads: int, args: argparse.Namespace
) -> tuple[float, float, int]:
    text = CONFIG.format(
        size=args.size, per_class=args.per_class, epochs=args.epochs, gpus=gpus, threads=threads
    )
    t0 = time.perf_counter()
    info = launcher.start(store, loads(text))
    while store.info(info.id).alive:
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    final = store.info(info.id)
    if final.status != "completed":
        raise SystemExit(f"gpus={gpus}: run {info.id} ended {final.status}: {final.reason}")
    train = [e for e in store.events(info.id) if e["kind"] == "train" and e["epoch"] > 1]
    return statistics.mean(e["examples_s"] for e in train), wall, len(train)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("TUNETERM_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs")
        one, wall1, n1 = _run(store, 1, 1, args)
        one2, wall12, n12 = _run(store, 1, 2, args)
        two, wall2, n2 = _run(store, 2, 1, args)
    print(
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}, load avg "
        f"{os.getloadavg()[0]:.1f}; resnet18 {args.size}px, batch 32 per process, "
        f"digits at most {args.per_class} per class, {args.epochs} epochs"
    )
    print("| processes | img/s (after epoch 1) | wall s (start to end) | train points |")
    print("|---|---|---|---|")
    print(f"| 1, 1 thread (baseline) | {one:.1f} | {wall1:.1f} | {n1} |")
    print(f"| 1, 2 threads | {one2:.1f} | {wall12:.1f} | {n12} |")
    print(f"| 2 x 1 thread (torchrun + DDP, gloo) | {two:.1f} | {wall2:.1f} | {n2} |")
    print(
        f"DDP 2 processes vs 1 process 1 thread: {two / one:.2f}x img/s, wall {wall2 / wall1:.2f}x;"
        f" vs 1 process 2 threads: {two / one2:.2f}x img/s, wall {wall2 / wall12:.2f}x"
    )


if __name__ == "__main__":
    main()
