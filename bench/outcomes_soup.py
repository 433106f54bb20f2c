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

One start per sweep (--same-head), LP-FT (--lp-epochs), seeds per point (--repeats), the
soups without BatchNorm re-estimation (--keep-bn, a diagnostic): bench/RESULTS.md, issue 29.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
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
from tuneterm.engine.models import init_rng

LRS = (3e-4, 1e-3, 3e-3)
AUGMENTS = ("none", "light")


@dataclass(frozen=True)
class Grid:
    """The sweep's points and how each starts (the defaults: the row of bench/outcomes.py)."""

    lrs: tuple[float, ...] = LRS
    augments: tuple[str, ...] = AUGMENTS
    repeats: int = 1  # points per (lr, augment), each its own seed
    same_head: bool = False  # build under model.init_seed (outcomes.run: under train.seed)
    lp_epochs: int = 0  # > 0: LP-FT, every point starts from the sweep's linear probe
    lp_lr: float = 1e-2
    keep_bn: bool = False  # soups keep the averaged BatchNorm statistics (a diagnostic)

    @property
    def points(self) -> list[tuple[float, str]]:
        return [(lr, aug) for aug in self.augments for lr in self.lrs for _ in range(self.repeats)]


def target_cfg(
    size: int, epochs: int, lr: float, augment: str, seed: int, start: int = 0, **extra: Any
) -> Any:
    """One point: its own seed (shuffling, augmentation), the sweep's start (the new head's
    weights, model.init_seed) and the one split (data.split_seed) of every sweep."""
    data = {"relabel": outcomes.PARITY, "per_class": 10, "split_seed": 0, "augment": augment}
    train = {"epochs": epochs, "batch_size": 16, "lr": lr, "seed": seed}
    return outcomes.cfg(size, data=data, train=train, model={"init_seed": start}, **extra)


def run_from(root: Path, name: str, c: Any, src: Path, start: Any = None) -> dict[str, Any]:
    """outcomes.run, but the new head drawn from model.init_seed, and from the weights `start`
    (a linear probe's state: the source's body and a trained head) when given."""
    torch.manual_seed(c.train.seed)
    data = build(c.data, c.train.seed)
    with init_rng(c.model.init_seed):
        built = build_model(
            c.model, len(data.classes), src, c.head, data.classes, c.data.image_size
        )
    if start is not None:
        built.model.load_state_dict(start)
    tr = Trainer(c, built, data, QuietContext(root / name, make=True), src)
    tr.fit()
    acc = tr.test()["acc"]
    print(f"  {name}: acc {acc:.3f}", flush=True)
    return {"acc": acc, "ckpt": root / name / "best.pt"}


def sweep(
    root: Path, size: int, epochs: int, src: Path, n: int, grid: Grid = Grid()
) -> list[dict[str, Any]]:
    """Sweep `n`: one run per point, seeds 100 n + i; with grid.same_head (or LP-FT) the new
    head drawn from seed n in each (one start per sweep, as a sweep from one pretrained model
    has); without, outcomes.run draws it from each point's train.seed."""
    runs, start = [], None
    if grid.lp_epochs:
        lp = {"strategy": "linear_probe"}
        c = target_cfg(size, grid.lp_epochs, grid.lp_lr, "none", 100 * n + 99, n, freeze=lp)
        start = checkpoint.load(run_from(root, f"sweep{n}_lp", c, src)["ckpt"])["model"]
    for i, (lr, aug) in enumerate(grid.points):
        name = f"sweep{n}_{i}_lr{lr:g}_{aug}"
        c = target_cfg(size, epochs, lr, aug, 100 * n + i, n)
        if grid.same_head or start is not None:
            res = run_from(root, name, c, src, start)
        else:
            res = outcomes.run(root, name, c, src)
        runs.append({"name": name, "ckpt": res["ckpt"], "test": res["acc"]})
    return runs


def soups(
    root: Path, size: int, src: Path, runs: list[dict[str, Any]], keep_bn: bool = False
) -> dict[str, Any]:
    """The sweep's best single run, uniform soup and greedy soup, scored on the test images.
    keep_bn: a diagnostic, not `tuneterm soup`: the soups keep the parents' averaged BatchNorm
    statistics instead of re-estimating them on the training images."""
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
    score = (lambda state, n: kitchen.score(state, 1)) if keep_bn else kitchen.score
    uniform = mix.uniform(candidates, score)
    greedy = mix.greedy(candidates, score)
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


def one_sweep(job: tuple[Path, int, int, Path, int, Grid]) -> dict[str, Any]:
    """Sweep `n` and its soups, in a process of its own (one torch thread)."""
    root, size, epochs, src, n, grid = job
    torch.set_num_threads(1)
    print(f"sweep {n}: odd vs even, 10 labels per class, {len(grid.points)} points")
    return soups(root, size, src, sweep(root, size, epochs, src, n, grid), grid.keep_bn)


def soup_rows(
    root: Path,
    size: int,
    src_epochs: int,
    tgt_epochs: int,
    sweeps: int,
    rows: list[Any],
    source: Path | None = None,
    jobs: int = 1,
    grid: Grid = Grid(),
) -> list[dict[str, Any]]:
    """Source training (or `source`, a best.pt of it), `sweeps` sweeps of the target in
    `jobs` processes, their soups; appends the rows."""
    if source is None:
        print("source: ten digits", flush=True)
        cfg = outcomes.cfg(size, train={"epochs": src_epochs, "batch_size": 32, "lr": 2e-3})
        source = Path(outcomes.run(root, "soup_source", cfg)["ckpt"])
    work = [(root, size, tgt_epochs, source, n, grid) for n in range(sweeps)]
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
                f"model soup, {name} ({sweeps} sweeps x {len(grid.points)} runs)",
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
    ap.add_argument("--augments", default=",".join(AUGMENTS), help="the swept augmentations")
    ap.add_argument("--repeats", type=int, default=1, help="seeds per (lr, augment) point")
    ap.add_argument("--same-head", action="store_true", help="new head from model.init_seed")
    ap.add_argument("--lp-epochs", type=int, default=0, help="LP-FT: linear probe epochs first")
    ap.add_argument("--lp-lr", type=float, default=1e-2, help="LP-FT: the linear probe's lr")
    ap.add_argument("--keep-bn", action="store_true", help="soups: no BatchNorm re-estimation")
    ap.add_argument("--root", type=Path, help="where the runs go (default: a new temp folder)")
    args = ap.parse_args()
    grid = Grid(
        tuple(float(x) for x in args.lrs.split(",")),
        tuple(args.augments.split(",")),
        args.repeats,
        args.same_head,
        args.lp_epochs,
        args.lp_lr,
        args.keep_bn,
    )
    size = 16 if args.quick else 32
    src_epochs, tgt_epochs = (3, 12) if args.quick else (5, 20)  # outcomes.py's
    tgt_epochs = args.epochs or tgt_epochs
    root = Path(tempfile.mkdtemp(prefix="tuneterm-soup-", dir=args.root))
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
        grid,
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
