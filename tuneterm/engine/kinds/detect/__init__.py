"""Object detection: a torchvision detector with a new box predictor (the kind's engine module)."""

# No `from __future__ import annotations` here: it would bind the name `annotations` in this
# package, hiding its `annotations` submodule from `from ... import annotations` below.
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig
from tuneterm.store.runs import RunStore
from tuneterm.tasks.detect import DetectSection
from tuneterm.tasks.predict import PredictError, PredictInput

if TYPE_CHECKING:
    from tuneterm.engine.kinds import Setup, Task

# Sections of classification techniques: a detect run takes none of them.
_CLASSIFY_ONLY = ("head", "freeze", "mix", "early_stop", "distill", "lora", "ema", "adapt")
_CLASSIFY_DATA = ("relabel", "per_class", "exclude", "dedup", "shift", "image_size")


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    """Model, weights, init checkpoint, and every annotation, before anything is created."""
    from tuneterm.config import launch
    from tuneterm.config.launch import device_issues
    from tuneterm.engine.kinds.detect import annotations
    from tuneterm.engine.kinds.detect.data import AUGMENT, EMBEDDED_CLASSES
    from tuneterm.engine.registry import resolve_init
    from tuneterm.tasks.detect import MODELS

    listing = f"detectors: {', '.join(MODELS)}"
    issues = launch.model_issues(cfg, MODELS, "not a detection model", listing)
    issues += _init_issues(cfg, store, resolve_init)
    if cfg.data.augment not in AUGMENT:
        issues.append(
            ConfigIssue(
                "data.augment",
                cfg.data.augment,
                f"detect runs take {', '.join(AUGMENT)} (box-aware flips, colour, zoom-out)",
            )
        )
    issues += _unused(cfg)
    if cfg.data.dataset in EMBEDDED_CLASSES:
        known = EMBEDDED_CLASSES[cfg.data.dataset]
        unknown = [c for c in cfg.data.classes if c not in known]
        if unknown:
            issues.append(
                ConfigIssue(
                    "data.classes", cfg.data.classes, f"{unknown} not in {', '.join(known)}"
                )
            )
    elif cfg.data.dataset in ("coco", "voc") and not issues:
        read = annotations.read_coco if cfg.data.dataset == "coco" else annotations.read_voc
        parsed = read(cfg.data, DetectSection.of(cfg))
        if parsed.issues:
            field = "data.annotations" if cfg.data.dataset == "coco" else "data.root"
            value = cfg.data.annotations if cfg.data.dataset == "coco" else cfg.data.root
            n = len(parsed.issues)
            issues.append(ConfigIssue(field, value, f"{n} problem(s):\n{parsed.message()}"))
    issues.extend(device_issues(cfg))
    if issues:
        raise ConfigError(issues)


def _unused(cfg: RunConfig) -> list[ConfigIssue]:
    """Keys a detect run would silently ignore: classification techniques and data options."""
    given, default = cfg.model_dump(), RunConfig().model_dump()
    keys = [(s, k) for s in _CLASSIFY_ONLY for k in given[s]]
    keys += [("data", k) for k in _CLASSIFY_DATA]
    return [
        ConfigIssue(f"{s}.{k}", given[s][k], "not used by detect runs; remove it")
        for s, k in keys
        if given[s][k] != default[s][k]
    ]


def _init_issues(cfg: RunConfig, store: RunStore | None, resolve_init: Any) -> list[ConfigIssue]:
    init = cfg.model.init
    if not init:
        return []
    if init.startswith("run:") and store is None:
        return [ConfigIssue("model.init", init, "needs a runs folder to look in")]
    try:
        path: Path = resolve_init(cfg, store)
    except LookupError as exc:
        return [ConfigIssue("model.init", init, str(exc))]
    if not path.is_file():
        return [ConfigIssue("model.init", init, f"no checkpoint {path}")]
    import torch

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        return [ConfigIssue("model.init", init, f"cannot read {path}: {exc}")]
    if not isinstance(ck, dict) or ck.get("task") != "detect":
        return [ConfigIssue("model.init", init, "not a detect run's checkpoint")]
    if ck.get("model_name") != cfg.model.name:
        return [
            ConfigIssue(
                "model.init",
                init,
                f"a {ck.get('model_name')} checkpoint; model.name is {cfg.model.name}",
            )
        ]
    return []


def build(cfg: RunConfig, setup: "Setup") -> "Task":
    """The data, the detector with its new box predictor, and the task object."""
    from tuneterm.engine.kinds.detect import task

    return task.build(cfg, setup)


def predict(best: Path, inputs: PredictInput) -> list[dict[str, Any]]:
    """Boxes (xyxy, pixels of the input image), labels and scores above the threshold."""
    import torch

    from tuneterm.engine.kinds.detect.data import read_image
    from tuneterm.engine.kinds.detect.models import from_checkpoint

    if not inputs.images:
        raise PredictError("detect runs predict on images: give one or more image files")
    model, meta = from_checkpoint(best)
    classes: list[str] = list(meta["classes"])
    threshold = inputs.score_threshold or 0.0
    out = []
    with torch.no_grad():
        for path in inputs.images:
            img = read_image(path)
            det = model([img.float() / 255])[0]
            keep = det["scores"] >= threshold
            boxes, labels, scores = det["boxes"][keep], det["labels"][keep], det["scores"][keep]
            out.append(
                {
                    "image": str(path),
                    "width": int(img.shape[2]),
                    "height": int(img.shape[1]),
                    "detections": [
                        {
                            "box": [round(v, 2) for v in b],
                            "label": classes[lb - 1],
                            "class_id": lb,
                            "score": round(s, 6),
                        }
                        for b, lb, s in zip(
                            boxes.tolist(), labels.tolist(), scores.tolist(), strict=True
                        )
                    ],
                }
            )
    return out
