"""The model-soup row of bench/outcomes.py: does averaging a sweep's runs beat its best run?

On the digits target (odd vs even, 10 labelled images per class, fine-tuned from the source
run, the epochs of outcomes.py's transfer rows), each sweep trains 6 points (3 learning rates
x 2 augmentations, a seed of its own each, one start: the new head drawn alike),
then reports on the same held-out test images: the best single run (chosen by validation),
the uniform soup and the greedy soup (engine/kinds/soup/mix.py, BatchNorm statistics
re-estimated on the training images). The split is fixed (data.split_seed = 0), so every run
and every soup holds out the same validation and test images; validation alone chooses.

    python bench/outcomes.py --only-soup --quick    # 3 sweeps, 16 px, in 3 processes
    python bench/outcomes_soup.py --quick --jobs 3  # the same, this row alone
    python bench/outcomes_soup.py --quick --jobs 3 --source SOURCE_BEST.pt  # reuse a source
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import outcomes
import torch

from tuneterm.engine import checkpoint
from tuneterm.engine.epochs import QuietContext
from tuneterm.engine.kinds.classify.data import build
from tuneterm.engine.kinds.classify.models import build_model
from tuneterm.engine.kinds.classify.task import trainer as Trainer
from tuneterm.engine.kinds.soup import mix
from tuneterm.engine.kinds.soup.cook import Kitchen

LRS = (3e-4, 1e-3, 3e-3)
AUGMENTS = ("none", "light")


def target_cfg(size: int, epochs: int, lr: float, augment: str, seed: int, start: int = 0) -> Any:
    """One point: its own seed (shuffling, augmentation), the sweep's start (the new head's
    weights, model.init_seed) and the one split (data.split_seed) of every sweep."""
    data = {"relabel": outcomes.PARITY, "per_class": 10, "split_seed": 0, "augment": augment}
    train = {"epochs": epochs, "batch_size": 16, "lr": lr, "seed": seed}
    return outcomes.cfg(size, data=data, train=train, model={"init_seed": start})


def sweep(
    root: Path, size: int, epochs: int, src: Path, n: int, lrs: tuple[float, ...] = LRS
) -> list[dict[str, Any]]:
    """Sweep `n`: one run per (lr, augment), seeds 100 n + i, the new head drawn from seed n
    in each (one start per sweep, as a sweep from one pretrained model has)."""
    runs = []
    points = [(lr, aug) for aug in AUGMENTS for lr in lrs]
    for i, (lr, aug) in enumerate(points):
        name = f"sweep{n}_{i}_lr{lr:g}_{aug}"
        res = outcomes.run(root, name, target_cfg(size, epochs, lr, aug, 100 * n + i, n), src)
        runs.append({"name": name, "ckpt": res["ckpt"], "test": res["acc"]})
    return runs


def soups(root: Path, size: int, src: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep's best single run, uniform soup and greedy soup, scored on the test images."""
    c = target_cfg(size, 1, LRS[0], "none", 0)  # BatchNorm re-estimated on unaugmented images
    data = build(c.data, c.train.seed)
    built = build_model(c.model, len(data.classes), src, c.head, data.classes, size)
    tr = Trainer(c, built, data, QuietContext(root / "soup", make=True), src)
    kitchen = Kitchen(tr, "val_acc")
    candidates = []
    for r in runs:
        own, state = kitchen.score(checkpoint.load(r["ckpt"])["model"], 1)
        candidates.append((r["name"], own, state))

    def test(state: mix.State) -> float:
        tr.model.load_state_dict(state)
        return float(tr.evaluate(data.test)["acc"])

    best = max(candidates, key=lambda cand: cand[1])
    uniform = mix.uniform(candidates, kitchen.score)
    greedy = mix.greedy(candidates, kitchen.score)
    out = {
        "best_single": test(best[2]),
        "best_single_val": best[1],
        "best_single_run": best[0],
        "uniform": test(uniform.state),
        "uniform_val": uniform.score,
        "greedy": test(greedy.state),
        "greedy_val": greedy.score,
        "greedy_members": greedy.members,
        "greedy_tried": [(t.run, round(t.score, 4), t.kept) for t in greedy.tried],
        "runs": {name: own for name, own, _ in candidates},
    }
    print(
        f"  best single {out['best_single']:.3f} (val {best[1]:.3f}), uniform "
        f"{out['uniform']:.3f} (val {uniform.score:.3f}), greedy {out['greedy']:.3f} "
        f"(val {greedy.score:.3f}, {len(greedy.members)} of {len(runs)})",
        flush=True,
    )
    return out


def one_sweep(job: tuple[Path, int, int, Path, int, tuple[float, ...]]) -> dict[str, Any]:
    """Sweep `n` and its soups, in a process of its own (one torch thread)."""
    root, size, epochs, src, n, lrs = job
    torch.set_num_threads(1)
    print(f"sweep {n}: odd vs even, 10 labels per class, {len(lrs) * len(AUGMENTS)} points")
    return soups(root, size, src, sweep(root, size, epochs, src, n, lrs))


def soup_rows(
    root: Path,
    size: int,
    src_epochs: int,
    tgt_epochs: int,
    sweeps: int,
    rows: list[Any],
    source: Path | None = None,
    jobs: int = 1,
    lrs: tuple[float, ...] = LRS,
) -> list[dict[str, Any]]:
    """Source training (or `source`, a best.pt of it), `sweeps` sweeps of the target in
    `jobs` processes, their soups; appends the rows."""
    if source is None:
        print("source: ten digits", flush=True)
        cfg = outcomes.cfg(size, train={"epochs": src_epochs, "batch_size": 32, "lr": 2e-3})
        source = Path(outcomes.run(root, "soup_source", cfg)["ckpt"])
    work = [(root, size, tgt_epochs, source, n, lrs) for n in range(sweeps)]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            results = pool.map(one_sweep, work)
    else:
        results = [one_sweep(w) for w in work]
    best = [r["best_single"] for r in results]
    for name in ("uniform", "greedy"):
        got = [r[name] for r in results]
        each = ", ".join(f"{b:.1%} -> {g:.1%}" for b, g in zip(best, got, strict=True))
        rows.append(
            (
                f"model soup, {name} ({sweeps} sweeps x {len(lrs) * len(AUGMENTS)} runs)",
                "best single run (by val)",
                statistics.mean(best),
                f"{name} soup",
                statistics.mean(got),
                f"mean of {sweeps}; each sweep: {each}",
            )
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="16 px images, short schedules")
    ap.add_argument("--sweeps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--source", type=Path, help="a source run's best.pt to reuse (no training)")
    ap.add_argument("--epochs", type=int, default=0, help="target epochs (default 20, quick 12)")
    ap.add_argument("--jobs", type=int, default=1, help="sweeps in parallel processes")
    ap.add_argument("--lrs", default=",".join(f"{lr:g}" for lr in LRS), help="the swept lrs")
    args = ap.parse_args()
    size = 16 if args.quick else 32
    src_epochs, tgt_epochs = (3, 12) if args.quick else (5, 20)  # outcomes.py's
    tgt_epochs = args.epochs or tgt_epochs
    root = Path(tempfile.mkdtemp(prefix="tuneterm-soup-"))
    rows: list[Any] = []
    t0 = time.perf_counter()
    results = soup_rows(
        root,
        size,
        src_epochs,
        tgt_epochs,
        args.sweeps,
        rows,
        args.source,
        args.jobs,
        tuple(float(x) for x in args.lrs.split(",")),
    )
    if args.json:
        print(json.dumps(results, indent=1))
    print("\n| technique | baseline | result | delta (points) | note |\n|---|---|---|---|---|")
    for row, bname, b, name, r, note in rows:
        print(f"| {row} | {bname} {b:.1%} | {name} {r:.1%} | {100 * (r - b):+.1f} | {note} |")
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.node()}, torch {torch.__version__}, "
        f"{args.jobs} processes, {time.perf_counter() - t0:.0f} s, image size {size}, "
        f"target epochs {tgt_epochs}"
    )


if __name__ == "__main__":
    main()
