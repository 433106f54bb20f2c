"""Outcome figure for detect runs: mAP@.5 of a fine-tuned detector against its untrained head.

COCO weights cannot be downloaded here, so a detector the project trains itself stands in
for them: SSDlite (MobileNetV3) from random init on generated canvases of three shapes
(circle, square, triangle). The fine-tuning task is three other shapes (cross, ring, bar):
`model.init = "run:<source>"` loads the source detector and replaces its box predictor (an
untrained head), then fine-tunes. Every run is a real `tuneterm run` (detached engine, CPU).

    python bench/outcomes_detect.py            # ~10 CPU minutes on 2 shared cores
    python bench/outcomes_detect.py --quick    # fewer images and epochs

Prints: the untrained head's test mAP@.5 (the source detector with a new predictor, before
any step), the fine-tuned run's, and the time each run took.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SOURCE = ["circle", "square", "triangle"]
TARGET = ["cross", "ring", "bar"]


def config(classes: list[str], epochs: int, images: int, init: str = "") -> str:
    return f"""
[run]
task = "detect"

[model]
name = "ssdlite320_mobilenet_v3_large"
weights = "none"
init = "{init}"

[data]
dataset = "shapes-boxes"
classes = {json.dumps(classes)}

[train]
epochs = {epochs}
batch_size = 8
lr = 0.002
weight_decay = 0.0001
log_every = 20
threads = 1

[detect]
canvas = 128
min_size = 128
images = {images}
"""


def tuneterm(runs: Path, *args: str) -> dict[str, Any]:
    env = dict(os.environ, TUNETERM_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tuneterm", "--runs-dir", str(runs), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"tuneterm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(proc.stdout))


def untrained_head_map50(runs: Path, run_id: str, cfg_text: str) -> float:
    """The target run's starting point scored on its test split: source detector, new head."""
    import torch

    from tuneterm.config import loads
    from tuneterm.engine.kinds.detect.data import build
    from tuneterm.engine.kinds.detect.models import build_detector
    from tuneterm.engine.kinds.detect.task import evaluate

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = loads(cfg_text)
    data = build(cfg.data, cfg.detect, cfg.train.seed)
    built = build_detector(cfg, len(data.classes), runs / run_id / "checkpoints" / "best.pt")
    res = evaluate(built.model, data.test, data.classes, 16, torch.device("cpu"))
    return float(res["map50"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    images, src_epochs, tgt_epochs = (300, 4, 2) if args.quick else (600, 5, 3)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        src_toml = Path(tmp) / "source.toml"
        src_toml.write_text(config(SOURCE, src_epochs, images))
        t0 = time.time()
        src = tuneterm(runs, "run", str(src_toml), "--name", "source")
        t_src = time.time() - t0
        tgt_text = config(TARGET, tgt_epochs, images, init=f"run:{src['id']}")
        before = untrained_head_map50(runs, src["id"], config(TARGET, tgt_epochs, images))
        tgt_toml = Path(tmp) / "target.toml"
        tgt_toml.write_text(tgt_text)
        t0 = time.time()
        tgt = tuneterm(runs, "run", str(tgt_toml), "--name", "finetune")
        t_tgt = time.time() - t0
    final = tgt["final"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(
        f"source detector ({', '.join(SOURCE)}; {src_epochs} epochs from random init): "
        f"test mAP@.5 {src['final']['test_map50']:.3f} in {t_src:.0f} s"
    )
    print(f"target ({', '.join(TARGET)}), untrained head:   test mAP@.5 {before:.3f}")
    print(
        f"target, fine-tuned {tgt_epochs} epochs:          test mAP@.5 "
        f"{final['test_map50']:.3f} (mAP@[.5:.95] {final['test_map']:.3f}) in {t_tgt:.0f} s"
    )
    goal = 0.5
    verdict = "meets" if final["test_map50"] >= goal else "misses"
    print(f"goal mAP@.5 >= {goal}: {verdict} it")


if __name__ == "__main__":
    main()
