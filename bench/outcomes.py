"""Outcome figures for the fine-tuning techniques: one row per technique, baseline vs result.

Embedded data (scikit-learn digits), fixed seeds, CPU. Runs in-process through the engine's
Trainer (the same code path as `tuneterm run`, minus the detached process).

    python bench/outcomes.py --quick --shifts ""   # the transfer rows: a few CPU minutes
    python bench/outcomes.py --quick                # and the DA rows: ~45 min on 2 cores
    python bench/outcomes.py --only-da              # only the DA rows (bench/outcomes_da.py)
    python bench/outcomes.py --only-soup --quick    # only the model-soup row (outcomes_soup.py)
    python bench/outcomes.py                        # longer schedules

Tasks:
- source: resnet18 (random init) trained on all ten digits (the train split).
- target: odd vs. even from 10 labelled images per class; the same held-out test images.
- shifted targets (bench/outcomes_da.py): the ten digits rotated 90 degrees and under an
  MNIST-M style colour texture (unlabelled for adaptation; labels only to score); each row the
  mean over three seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tuneterm.config import RunConfig, from_dict
from tuneterm.engine.epochs import QuietContext
from tuneterm.engine.kinds.classify.data import build
from tuneterm.engine.kinds.classify.models import build_model
from tuneterm.engine.kinds.classify.task import trainer as Trainer

Row = tuple[str, str, float, str, float, str]
PARITY = {"even": ["0", "2", "4", "6", "8"], "odd": ["1", "3", "5", "7", "9"]}


def cfg(size: int, **sections: dict[str, Any]) -> RunConfig:
    data: dict[str, Any] = {
        "model": {"name": "resnet18", "weights": "none"},
        "data": {"dataset": "digits", "image_size": size},
        "train": {"optimizer": "adamw", "scheduler": "cosine", "seed": 0, "log_every": 1000},
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return from_dict(data)


def run(root: Path, name: str, c: RunConfig, init: Path | None = None) -> dict[str, Any]:
    """Train, test the best checkpoint, run the techniques' finish; returns the figures."""
    torch.manual_seed(c.train.seed)
    t0 = time.perf_counter()
    data = build(c.data, c.train.seed)
    built = build_model(c.model, len(data.classes), init, c.head, data.classes, c.data.image_size)
    tr = Trainer(c, built, data, QuietContext(root / name, make=True), init)
    tr.fit()
    res = tr.test()
    out = {
        "acc": res["acc"],
        "params": tr.params,
        **tr.tech.finish(tr),
        "ckpt": root / name / "best.pt",
        "seconds": time.perf_counter() - t0,
    }
    print(f"  {name}: acc {res['acc']:.3f} ({out['seconds']:.0f} s)", flush=True)
    return out


@dataclass(frozen=True)
class Parity:
    """The transfer target: odd vs even digits, 10 labels per class, `epochs` at batch 16."""

    root: Path
    size: int
    epochs: int

    def run(
        self, name: str, lr: float, init: Path | None = None, **sections: dict[str, Any]
    ) -> dict[str, Any]:
        """A target run at `lr`, from `init` when given; `sections` add to its config."""
        data = {"relabel": PARITY, "per_class": 10}
        train = {"epochs": self.epochs, "batch_size": 16, "lr": lr}
        return run(self.root, name, cfg(self.size, data=data, train=train, **sections), init)


def transfer_rows(root: Path, size: int, src_epochs: int, tgt_epochs: int, rows: list[Row]) -> None:
    """Source training, then the odd-vs-even transfer rows."""
    print("source: ten digits", flush=True)
    source = run(
        root, "source", cfg(size, train={"epochs": src_epochs, "batch_size": 32, "lr": 2e-3})
    )
    src = Path(source["ckpt"])
    print("target: odd vs even, 10 labels per class", flush=True)
    target = Parity(root, size, tgt_epochs)
    scratch = target.run("scratch", 1e-3)
    full = target.run("full_ft", 3e-4, src)
    probe = target.run("linear_probe", 1e-2, src, freeze={"strategy": "linear_probe"})
    gradual = target.run(
        "gradual", 3e-4, src, freeze={"strategy": "gradual", "every": max(1, tgt_epochs // 6)}
    )
    lora = target.run("lora", 3e-3, src, lora={"enabled": True, "rank": 4})
    rows.append(("fine-tune from source", "scratch", scratch["acc"], "fine-tune", full["acc"], ""))
    rows.append(("linear probe", "full fine-tune", full["acc"], "linear probe", probe["acc"], ""))
    rows.append(
        ("gradual unfreezing", "full fine-tune", full["acc"], "gradual", gradual["acc"], "")
    )
    pct = lora["params"]["trainable_pct"]
    rows.append(
        (
            "LoRA r=4",
            "full fine-tune",
            full["acc"],
            "LoRA",
            lora["acc"],
            f"{pct:.1f}% trainable; {lora['acc'] / max(full['acc'], 1e-9):.1%} of full",
        )
    )
    kd = target.run(
        "kd_student",
        1e-3,
        distill={"teacher": str(full["ckpt"]), "alpha": 0.7, "temperature": 4.0},
    )
    rows.append(("distillation", "scratch student", scratch["acc"], "KD student", kd["acc"], ""))


def timm_rows(root: Path, size: int, src_epochs: int, tgt_epochs: int, rows: list[Row]) -> None:
    """The transfer row with a timm model (resnet10t, random init): fine-tuned from a source
    run against from scratch, as the torchvision row."""
    timm = {"name": "timm/resnet10t", "weights": "none"}
    print("timm source: ten digits (resnet10t)", flush=True)
    source = run(
        root,
        "timm_source",
        cfg(size, model=timm, train={"epochs": src_epochs, "batch_size": 32, "lr": 2e-3}),
    )
    target = Parity(root, size, tgt_epochs)
    scratch = target.run("timm_scratch", 1e-3, model=timm)
    full = target.run("timm_full_ft", 3e-4, Path(source["ckpt"]), model=timm)
    rows.append(
        (
            "fine-tune from source (timm resnet10t)",
            "scratch",
            scratch["acc"],
            "fine-tune",
            full["acc"],
            "",
        )
    )


def da_rows(
    shifts: list[str], methods: list[str], seeds: list[int], epochs: int, rows: list[Row]
) -> None:
    """Source-only, AdaBN and each feature-level method per shift, the mean over `seeds`
    (bench/outcomes_da.py, in parallel processes)."""
    import outcomes_da

    results = outcomes_da.grid(shifts, methods, seeds, epochs, 16, 2)
    for row in outcomes_da.table(results, methods):
        label = outcomes_da.SHIFT_LABELS.get(row["shift"], row["shift"])
        for name, (acc, _, src) in list(row["cells"].items())[1:]:
            note = f"source >= {src:.1%} (source only >= {row['source_acc']:.1%}); seeds {seeds}"
            rows.append((f"{name} ({label})", "source only", row["base"], name, acc, note))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small images, short schedules")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--shifts", default="rot90,texture", help="target shifts of the DA rows, comma-separated"
    )
    ap.add_argument("--only-da", action="store_true", help="only the domain adaptation rows")
    ap.add_argument("--only-timm", action="store_true", help="only the timm transfer row")
    ap.add_argument(
        "--only-soup", action="store_true", help="only the model-soup rows (3 sweeps of 6 runs)"
    )
    ap.add_argument("--soup", action="store_true", help="add the model-soup rows")
    ap.add_argument("--da-epochs", type=int, default=15, help="epochs of the DA runs")
    ap.add_argument("--da-seeds", default="0,1,2", help="seeds of the DA runs (rows: the mean)")
    ap.add_argument(
        "--methods", default="dann,cdan,coral,mmd", help="feature-level DA methods, comma-separated"
    )
    args = ap.parse_args()
    size = 16 if args.quick else 32
    src_epochs, tgt_epochs = (3, 12) if args.quick else (5, 20)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = Path(tempfile.mkdtemp(prefix="tuneterm-outcomes-"))
    rows: list[Row] = []
    t_start = time.perf_counter()

    if args.only_soup or args.soup:
        import outcomes_soup

        # 18 target runs: 3 sweeps in parallel processes
        outcomes_soup.soup_rows(root, size, src_epochs, tgt_epochs, 3, rows, jobs=3)
    if args.only_soup:
        args.shifts, args.only_da = "", True  # nothing else
    elif args.only_timm:
        args.shifts = ""
    elif not args.only_da:
        transfer_rows(root, size, src_epochs, tgt_epochs, rows)
    if not args.only_da:
        timm_rows(root, size, src_epochs, tgt_epochs, rows)

    if shifts := [s for s in args.shifts.split(",") if s]:
        seeds = [int(s) for s in args.da_seeds.split(",")]
        da_rows(shifts, args.methods.split(","), seeds, args.da_epochs, rows)
    elapsed = time.perf_counter() - t_start

    if args.json:
        print(
            json.dumps(
                [
                    dict(
                        zip(("row", "base_name", "base", "name", "result", "note"), r, strict=True)
                    )
                    for r in rows
                ],
                indent=1,
            )
        )
        return
    print()
    print("| technique | baseline | result | delta (points) | note |")
    print("|---|---|---|---|---|")
    for row, bname, b, name, r, note in rows:
        print(f"| {row} | {bname} {b:.1%} | {name} {r:.1%} | {100 * (r - b):+.1f} | {note} |")
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {elapsed:.0f} s, "
        f"image size {size}, DA epochs {args.da_epochs} (16 px)"
    )


if __name__ == "__main__":
    main()
