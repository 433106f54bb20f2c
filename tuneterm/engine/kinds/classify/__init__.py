"""Image classification: a torchvision classifier with a new head (the kind's engine module)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import RunConfig
from tuneterm.runs.predict import PredictError, PredictInput
from tuneterm.store.runs import RunStore

if TYPE_CHECKING:
    from tuneterm.engine.kinds import Setup, Task


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    from tuneterm.engine.registry import validate as validate_names

    validate_names(cfg, store)


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
