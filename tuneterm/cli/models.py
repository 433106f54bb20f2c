"""Commands about models: models, predict, export-model, lr-find."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from tuneterm import tasks
from tuneterm.cli.common import (
    CONFIG_HELP,
    EXIT_INVALID,
    EXIT_OK,
    RUN_HELP,
    SET_HELP,
    AddCommand,
    out,
    store_of,
)
from tuneterm.config import ConfigError, ConfigIssue, load, sources
from tuneterm.config.choices import MODEL_SOURCES
from tuneterm.runs.export import export_model
from tuneterm.runs.predict import PredictInput, predict
from tuneterm.tasks import classify


def cmd_models(args: argparse.Namespace) -> int:
    """What a kind's model field (`model.name`, `text.model`, ...) accepts."""
    spec = tasks.get(args.task)
    if spec.name == classify.SPEC.name:  # image classifiers come from several libraries
        need = sources.missing_package(args.source)
        if need:
            raise ConfigError([ConfigIssue("--source", args.source, need)])
        about = sources.listing(args.source, args.filter or "", args.pretrained)
        if not about:
            print(f"no {args.source} model matches {args.filter!r}", file=sys.stderr)
            return EXIT_INVALID
    else:
        about = tasks.models_of(spec)
    if args.json:  # names only when the catalog says nothing more about them
        out(about if any(about.values()) else list(about))
    elif about:
        width = max(map(len, about))
        print("\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in about.items()))
    else:
        print(f"{spec.name} runs name their model in {spec.model_field}", file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """torch's FutureWarnings (deprecations inside torch.jit and torch.onnx) are for library
    authors: the user of predict or export-model can do nothing about them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def cmd_predict(args: argparse.Namespace) -> int:
    store = store_of(args)
    run_id = store.resolve(args.run)
    inputs = PredictInput(
        images=[Path(p) for p in args.images],
        texts=list(args.text),
        top_k=args.top_k,
        score_threshold=args.threshold,
    )
    with quiet_torch():
        result = predict(store, run_id, inputs)
    if tasks.get(result["task"]).inputs == "texts" and not (args.json or args.out):
        for row in result["predictions"]:  # label, score, text, (the other top-k)
            others = "  ".join(f"{t['label']} {t['score']:.3f}" for t in row["top"][1:])
            print(
                f"{row['label']}\t{row['score']:.3f}\t{row['text']}"
                + (f"\t({others})" if others else "")
            )
        return EXIT_OK
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def cmd_export_model(args: argparse.Namespace) -> int:
    store = store_of(args)
    run_id = store.resolve(args.run)
    with quiet_torch():
        done = export_model(store, run_id, args.format, Path(args.out) if args.out else None)
    if args.json:
        out({"path": str(done.path), "format": done.format, "metadata": done.metadata})
    else:
        print(
            f"wrote {done.path} ({done.format}, {done.metadata['task']}, "
            f"{len(done.metadata['classes'])} classes)"
        )
    return EXIT_OK


def cmd_lr_find(args: argparse.Namespace) -> int:
    from tuneterm.runs.lr_find import lr_find
    from tuneterm.tui.textplots import lr_curve

    cfg = load(args.config, args.set)
    result = lr_find(cfg, store_of(args), args.start, args.end, args.steps)
    if args.json:
        out({"lrs": result.lrs, "losses": result.losses, "suggestion": result.suggestion})
    else:
        print(lr_curve(result.lrs, result.losses, result.suggestion, colour=sys.stdout.isatty()))
        print(f"suggested lr: {result.suggestion:.2e} (steepest fall of the smoothed loss)")
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    kinds = tasks.names()
    p = add("models", cmd_models, "list the models a run.task can fine-tune", store=False)
    p.add_argument(
        "--task",
        choices=kinds,
        default=kinds[0],
        help="; ".join(f"{n}: {tasks.get(n).summary}" for n in kinds) + f" (default {kinds[0]})",
    )
    p.add_argument(
        "--source",
        choices=MODEL_SOURCES,
        default=MODEL_SOURCES[0],
        help="classify: where the models come from (model.source)",
    )
    p.add_argument("--filter", help="classify: only names matching this glob, e.g. 'convnext*'")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="classify: only models with pretrained weights (timm: its arch.tag names)",
    )
    p = add(
        "predict",
        cmd_predict,
        "predict with a run's best checkpoint: top-k classes or boxes of images (JSON), or "
        "labels and scores of --text inputs",
    )
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (image kinds)")
    p.add_argument("--text", action="append", default=[], help="text kinds: a text (repeatable)")
    p.add_argument(
        "--top-k", type=int, default=5, help="classify, text: best classes per input (default 5)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="detect: drop boxes scoring below this (default: the run's detect.score_threshold)",
    )
    p.add_argument("--out", help="file to write (default: stdout)")
    p = add(
        "export-model",
        cmd_export_model,
        "write a run's best checkpoint as TorchScript or ONNX, with classes and preprocessing",
    )
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript",
                   help="torchscript (default) or onnx (needs the onnx package)")  # fmt: skip
    p.add_argument("--out", help="file to write (default: RUN_DIR/model.pt or model.onnx)")
    p = add("lr-find", cmd_lr_find, "LR range test: plot loss against lr for a config")
    p.add_argument("config", help=CONFIG_HELP)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=SET_HELP)  # fmt: skip
    p.add_argument("--start", type=float, default=1e-6, help="first lr (default 1e-6)")
    p.add_argument("--end", type=float, default=1.0, help="last lr (default 1)")
    p.add_argument("--steps", type=int, default=60, help="steps (default 60)")
