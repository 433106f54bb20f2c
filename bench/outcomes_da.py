"""Domain adaptation outcomes: each adapt.method against source-only, over several seeds.

    python bench/outcomes_da.py --quick                      # rot90 and texture, 3 seeds
    python bench/outcomes_da.py --shifts rot90,invert,texture,contrast,colour --seeds 0,1,2

Source: resnet18 (random init) on the ten digits (scikit-learn's, embedded). Target: the same
digits under a synthetic shift (tuneterm/engine/kinds/classify/shifts.py), unlabelled for
training; its labels only score. For each shift and seed:
- one AdaBN run gives source-only (the trained model on the target, before AdaBN) and AdaBN;
- one run per feature-level method (DANN, CDAN, CORAL, MMD), and "batches only" (DANN at
  weight 0: source and target in every batch, no alignment), the ablation.

Every run is a real Trainer run (the engine's code path, minus the detached process), in its
own process; --jobs of them at a time. The table gives each method's mean target accuracy over
the seeds, its gain over source-only in points (the baseline measured in the same seeds), and
the lowest source accuracy of the method's runs against source-only's. --json prints every run.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import mean
from typing import Any

HERE = Path(__file__).resolve().parent
SHIFT_LABELS = {
    "invert": "inverted",
    "contrast": "low contrast",
    "rot90": "rotated 90°",
    "colour": "colour patches",
    "texture": "colour texture (MNIST-M style)",
}
# column -> (adapt.method, adapt.weight, extra train settings)
METHODS: dict[str, tuple[str, float, dict[str, Any]]] = {
    "adabn": ("adabn", 1.0, {}),
    "batches": ("dann", 0.0, {}),
    "dann": ("dann", 1.0, {"scheduler": "anneal"}),
    "cdan": ("cdan", 1.0, {"scheduler": "anneal"}),
    "coral": ("coral", 1.0, {}),
    "mmd": ("mmd", 1.0, {}),
}
COLUMNS = {
    "batches": "batches only",
    "dann": "DANN",
    "cdan": "CDAN",
    "coral": "CORAL",
    "mmd": "MMD",
}


def one(spec: dict[str, Any]) -> dict[str, Any]:
    """One run, in this process: the figures of bench/outcomes.py's `run`."""
    import torch

    torch.set_num_threads(spec["threads"])
    sys.path.insert(0, str(HERE))
    from outcomes import cfg, run

    method, weight, train = METHODS[spec["column"]]
    root = Path(tempfile.mkdtemp(prefix="tuneterm-da-"))
    res = run(
        root,
        spec["column"],
        cfg(
            spec["size"],
            train={"epochs": spec["epochs"], "batch_size": 32, "lr": 2e-3, "seed": spec["seed"]}
            | train,
            adapt={"method": method, "target_shift": spec["shift"], "weight": weight},
        ),
    )
    keep = ("acc", "target_acc", "target_acc_source_only", "domain_acc", "domain_loss", "seconds")
    return {**spec, **{k: res[k] for k in keep if k in res}}


def grid(
    shifts: list[str], columns: list[str], seeds: list[int], epochs: int, size: int, jobs: int
) -> list[dict[str, Any]]:
    """Every (shift, seed, column) run, `jobs` processes at a time; results in grid order."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    specs = [
        {"shift": s, "column": c, "seed": seed, "epochs": epochs, "size": size, "threads": threads}
        for s in shifts
        for seed in seeds
        for c in ["adabn", *columns]
    ]
    print(f"{len(specs)} runs, {jobs} at a time, {threads} threads each", flush=True)
    t0 = time.perf_counter()

    def go(spec: dict[str, Any]) -> dict[str, Any]:
        got = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [x for x in got.stdout.splitlines() if x.startswith("RESULT ")]
        if not lines:
            raise SystemExit(f"run {spec} failed:\n{got.stderr[-3000:]}")
        res: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
        print(
            f"  {time.perf_counter() - t0:5.0f} s  {res['shift']:>8} seed {res['seed']} "
            f"{res['column']:>7}: source {res['acc']:.1%}, target {res['target_acc']:.1%}"
            + (
                f" (source only {res['target_acc_source_only']:.1%})"
                if "target_acc_source_only" in res
                else f", domain acc {res.get('domain_acc', float('nan')):.0%}"
            ),
            flush=True,
        )
        return res

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(go, specs))


def table(results: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    """Per shift and column: mean target accuracy over seeds, gain over source-only, source."""
    rows = []
    for shift in dict.fromkeys(r["shift"] for r in results):
        of = [r for r in results if r["shift"] == shift]
        adabn = [r for r in of if r["column"] == "adabn"]
        base = mean(r["target_acc_source_only"] for r in adabn)
        src = min(r["acc"] for r in adabn)
        cells = {"source only": (base, [r["target_acc_source_only"] for r in adabn], src)}
        cells["AdaBN"] = (
            mean(r["target_acc"] for r in adabn),
            [r["target_acc"] for r in adabn],
            src,
        )
        for c in columns:
            runs = [r for r in of if r["column"] == c]
            accs = [r["target_acc"] for r in runs]
            cells[COLUMNS[c]] = (mean(accs), accs, min(r["acc"] for r in runs))
        rows.append({"shift": shift, "base": base, "source_acc": src, "cells": cells})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    names = list(rows[0]["cells"])
    print("\n| shift | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        out = []
        for name, (acc, _, _) in row["cells"].items():
            gain = "" if name == "source only" else f" ({100 * (acc - row['base']):+.1f})"
            out.append(f"{acc:.1%}{gain}")
        print(f"| {SHIFT_LABELS.get(row['shift'], row['shift'])} | " + " | ".join(out) + " |")
    print("\nper seed (target accuracy), and the lowest source accuracy of each column's runs:")
    for row in rows:
        for name, (_, accs, src) in row["cells"].items():
            seeds = ", ".join(f"{a:.1%}" for a in accs)
            print(f"  {row['shift']:>8} {name:>12}: {seeds}; source >= {src:.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="rot90 and texture (the default)")
    ap.add_argument("--shifts", default="rot90,texture")
    ap.add_argument("--methods", default="dann,cdan,coral,mmd", help="and: batches")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(json.loads(args.one))), flush=True)
        return
    columns = args.methods.split(",")
    t0 = time.perf_counter()
    results = grid(
        args.shifts.split(","),
        columns,
        [int(s) for s in args.seeds.split(",")],
        args.epochs,
        args.size,
        args.jobs,
    )
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print_table(table(results, columns))
    import torch

    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cpus, "
        f"torch {torch.__version__}, {time.perf_counter() - t0:.0f} s, image size {args.size}, "
        f"{args.epochs} epochs, seeds {args.seeds}"
    )


if __name__ == "__main__":
    main()
