"""Image classification: a torchvision classifier with a new head (engine/loop.py's Trainer)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import RunConfig
from tuneterm.runs.predict import PredictError, PredictInput
from tuneterm.store.runs import RunStore

if TYPE_CHECKING:
    from tuneterm.engine.ddp import Dist
    from tuneterm.engine.process import EngineProcess


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    from tuneterm.engine.registry import validate as validate_names

    validate_names(cfg, store)


def train(engine: EngineProcess, cfg: RunConfig, resume: bool) -> int:
    from tuneterm.engine.ddp import Dist
    from tuneterm.engine.loop import pick_device

    device = pick_device(cfg.train.device, engine.rank)
    dist = Dist(engine.rank, device, cfg.dist.backend)  # one process: nothing to set up
    code = _train(engine, cfg, resume, dist)
    dist.close()  # not on an exception: a dead peer can make the teardown hang
    return code


def _train(engine: EngineProcess, cfg: RunConfig, resume: bool, dist: Dist) -> int:
    import socket

    import torch

    from tuneterm.engine import faults
    from tuneterm.engine.data import build
    from tuneterm.engine.loop import Trainer
    from tuneterm.engine.models import build_model
    from tuneterm.engine.process import device_name
    from tuneterm.engine.registry import resolve_init

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    data = build(cfg.data, cfg.train.seed)
    engine.record_data(cfg.data.dataset, data.classes, data.counts)
    init = resolve_init(cfg, engine.store)
    built = build_model(cfg.model, len(data.classes), init, cfg.head)
    faults.install_oom(built.model)  # test hook; does nothing unless TUNETERM_FAULT is set
    trainer = Trainer(cfg, built, data, engine, init, dist)
    if dist.on:  # the same init on every rank (DDP broadcast rank 0's); then each its own draws
        torch.manual_seed(cfg.train.seed + dist.rank.rank)
    engine.use_gpus(trainer.device)
    ranks = dist.gather(
        {
            "rank": dist.rank.rank,
            "host": socket.gethostname(),
            "device": device_name(trainer.device),
            "pid": os.getpid(),
        }
    )
    ddp = f", rank 0 of {dist.rank.world} (DDP, {cfg.dist.backend} backend)" if dist.on else ""

    def final(result: dict[str, Any]) -> dict[str, Any]:
        return {
            **{f"{result['split']}_{k}": result[k] for k in ("loss", "acc", "top5")},
            "per_class": result["per_class"],
            "confusion": result["confusion"],
            "best_epoch": result["epoch"],
            **trainer.tech.finish(trainer),  # e.g. target-domain accuracy
        }

    return engine.drive(
        trainer,
        resume,
        model=cfg.model.name + ddp,
        final=final,
        stop_now=dist.any,
        ranks=ranks,
        data=data.counts,
        classes=data.classes,
    )


def predict(best: Path, inputs: PredictInput) -> list[dict[str, Any]]:
    """Top-k classes with softmax probabilities for each image."""
    import torch

    from tuneterm.engine import checkpoint
    from tuneterm.engine.data import decode
    from tuneterm.engine.models import from_checkpoint

    if not inputs.images:
        raise PredictError("classify runs predict on images: give one or more image files")
    ck = checkpoint.load(best)
    classes: list[str] = list(ck["classes"])
    size = int(ck["image_size"])
    mean = torch.tensor(ck["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(ck["std"]).view(1, 3, 1, 1)
    model = from_checkpoint(best).eval()
    k = min(inputs.top_k, len(classes))
    out = []
    with torch.no_grad():
        for path in inputs.images:
            x = (decode(path, size)[None].float() / 255 - mean) / std
            probs = model(x).float().softmax(1)[0]
            top = probs.topk(k)
            out.append(
                {
                    "image": str(path),
                    "top_k": [
                        {"class": classes[i], "index": i, "score": round(p, 6)}
                        for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
                    ],
                }
            )
    return out
