"""Image classification: a torchvision classifier with a new head (the kind's engine module)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig, launch
from tuneterm.config import sources as model_sources  # not `sources`: a module of this package
from tuneterm.store.runs import RunStore
from tuneterm.tasks.classify.datacheck import check as check_data
from tuneterm.tasks.predict import PredictError, PredictInput

if TYPE_CHECKING:
    from tuneterm.engine.kinds import Setup, Task


def validate(cfg: RunConfig, store: RunStore | None = None) -> None:
    """Every check of a classify run before it is created: the model and its weights, the
    init checkpoint and the teacher, the data (tuneterm/tasks/classify/datacheck.py) and the
    device; raises ConfigError naming each field. No torch import (the catalog is cached per
    library version) unless a timm weights file must be read."""
    if model_sources.split(cfg.model)[0] == "torchvision":
        issues = launch.classifier_issues(cfg)
    else:
        issues = model_sources.model_issues(cfg)
        issues += _weights_file_issues(cfg, issues)
    issues += launch.init_issues(cfg, store)
    issues += launch.teacher_issues(cfg, store)
    issues += model_sources.teacher_issues(cfg)
    issues += check_data(cfg)
    issues += launch.device_issues(cfg)
    if issues:
        raise ConfigError(issues)


def _weights_file_issues(cfg: RunConfig, found: list[ConfigIssue]) -> list[ConfigIssue]:
    """A timm weights file that is not for model.name's architecture (read with torch)."""
    source, name = model_sources.split(cfg.model)
    file = model_sources.weights_file(cfg.model.weights)
    if source != "timm" or file is None or found:
        return []
    from tuneterm.engine.kinds.classify.weightsfit import timm_file_problem

    problem = timm_file_problem(name, file)
    return [ConfigIssue("model.weights", cfg.model.weights, problem)] if problem else []


def build(cfg: RunConfig, setup: Setup) -> Task:
    """The data, the model with its new head, and the task object the Trainer trains."""
    from tuneterm.engine.kinds.classify import task

    return task.build(cfg, setup)


def predict(best: Path, inputs: PredictInput) -> list[dict[str, Any]]:
    """Top-k classes with softmax probabilities for each image."""
    import torch

    from tuneterm.engine import checkpoint
    from tuneterm.engine.kinds.classify.data import decode
    from tuneterm.engine.kinds.classify.models import from_checkpoint
    from tuneterm.engine.kinds.classify.resize import Resize

    if not inputs.images:
        raise PredictError("classify runs predict on images: give one or more image files")
    ck = checkpoint.load(best)
    classes: list[str] = list(ck["classes"])
    size = int(ck["image_size"])
    mean = torch.tensor(ck["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(ck["std"]).view(1, 3, 1, 1)
    model = from_checkpoint(best).eval()
    resize = Resize.of(ck.get("preprocess"))  # the way its training read images
    k = min(inputs.top_k, len(classes))
    out = []
    with torch.no_grad():
        for path in inputs.images:
            x = (decode(path, size, resize)[None].float() / 255 - mean) / std
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
