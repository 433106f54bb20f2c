"""Outcome figures for text classification: a frozen encoder with a linear head, LoRA, and full
fine-tuning of the packaged all-MiniLM-L6-v2 on the generated topics set, same data and seed.

Runs in-process through the text task's trainer (the code path of `tuneterm run` minus the
detached process), on the CPU unless a GPU is there.

    python bench/outcomes_text.py            # a few CPU minutes
    python bench/outcomes_text.py --json     # the figures as JSON too
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from tuneterm.config import RunConfig, from_dict
from tuneterm.engine.epochs import QuietContext
from tuneterm.engine.kinds.text import data as textdata
from tuneterm.engine.kinds.text.models import build, load_tokenizer, resolve_for
from tuneterm.engine.kinds.text.task import trainer as TextTrainer


def config(args: argparse.Namespace, **sections: dict[str, Any]) -> RunConfig:
    data: dict[str, Any] = {
        "run": {"task": "text"},
        "data": {"dataset": "topics", "per_class": args.per_class},
        "text": {"max_length": 32},
        "train": {
            "epochs": args.epochs,
            "batch_size": 16,
            "seed": 0,
            "log_every": 1000,
            "threads": args.threads,
            "metric": "val_f1",
        },
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return from_dict(data)


def run(folder: Path, name: str, c: RunConfig) -> dict[str, Any]:
    torch.manual_seed(c.train.seed)
    if c.train.threads:
        torch.set_num_threads(c.train.threads)
    source = resolve_for(c.text)
    tok = load_tokenizer(source)
    d = textdata.build(c.data, c.text, c.train.seed)
    for split in (d.train, d.val, d.test):
        textdata.tokenize(split, tok, c.text)
    tr = TextTrainer(c, build(source, len(d.classes)), tok, d, QuietContext(folder, make=True))
    t0 = time.perf_counter()
    tr.fit()
    seconds = time.perf_counter() - t0
    res = tr.test()
    out = {
        "acc": res["acc"],
        "f1": res["f1"],
        "trainable_pct": tr.params["trainable_pct"],
        "train_s": seconds,
        "steps": tr.total_steps,
        "counts": d.counts,
    }
    print(
        f"  {name}: test acc {res['acc']:.3f}, macro-F1 {res['f1']:.3f}, "
        f"{tr.params['trainable_pct']:.2f}% trainable, {seconds:.0f} s",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=32, help="training texts per topic")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TUNETERM_OFFLINE", "1")
    rows = {
        "frozen encoder + linear head": config(
            args, freeze={"strategy": "linear_probe"}, train={"lr": 3e-3}
        ),
        "LoRA r=8 (q, k, v)": config(args, lora={"enabled": True, "rank": 8}, train={"lr": 1e-3}),
        "full fine-tuning": config(args, train={"lr": 1e-4}),
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            name: run(Path(tmp) / f"r{i}", name, c) for i, (name, c) in enumerate(rows.items())
        }
    total = time.perf_counter() - t0
    full = results["full fine-tuning"]
    counts = full["counts"]
    print(
        f"\n{platform.node()}: {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {total:.0f} s in all; topics: train "
        f"{counts['train']}, val {counts['val']}, test {counts['test']}; "
        f"{args.epochs} epochs, batch 16, max_length 32, seed 0\n"
    )
    print("| method | test acc | macro-F1 | F1 vs full | trainable | train time | time vs full |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {100 * r['acc']:.1f}% | {r['f1']:.3f} | {r['f1'] / full['f1']:.2f}x "
            f"| {r['trainable_pct']:.2f}% | {r['train_s']:.0f} s | "
            f"{r['train_s'] / full['train_s']:.2f}x |"
        )
    if args.json:
        print(json.dumps({k: {**v, "counts": None} for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
