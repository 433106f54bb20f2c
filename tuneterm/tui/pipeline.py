"""The training input pipeline of a run, described from its config alone (no torch).

The config pane shows it. Each augmentation preset is named with the torchvision transforms
the engine builds for it (engine/techniques/augment.py); a unit test holds the two together.
"""

from __future__ import annotations

from collections.abc import Callable

from tuneterm import tasks
from tuneterm.config import ConfigError, RunConfig, loads
from tuneterm.tasks.text import TextSection


def _light(size: int) -> list[str]:
    return [f"RandomCrop(size={size}, padding={max(1, size // 8)})", "RandomHorizontalFlip(p=0.5)"]


PRESETS: dict[str, Callable[[int], list[str]]] = {
    "none": lambda size: [],
    "light": _light,
    "randaugment": lambda size: [*_light(size), "RandAugment(num_ops=2, magnitude=9)"],
    "trivialaugment": lambda size: [*_light(size), "TrivialAugmentWide()"],
    "autoaugment": lambda size: [*_light(size), "AutoAugment(policy=IMAGENET)"],
}


def _images(cfg: RunConfig) -> list[str]:
    d, m = cfg.data, cfg.mix
    lines = [f"decode -> uint8 3x{d.image_size}x{d.image_size} (cached in RAM when it fits)"]
    if d.shift != "none":
        lines.append(f"shift: {d.shift}")
    preset = PRESETS.get(d.augment)
    steps = preset(d.image_size) if preset else [f"the {d.augment!r} augmentation preset"]
    lines += [f"per image: {step}" for step in steps]
    lines.append("to device, float, normalise with the model's mean/std")
    if m.mixup > 0 or m.cutmix > 0:
        parts = [f"MixUp(alpha={m.mixup})"] if m.mixup > 0 else []
        parts += [f"CutMix(alpha={m.cutmix})"] if m.cutmix > 0 else []
        lines.append(f"per batch (p={m.prob}): one of " + ", ".join(parts))
    return lines


def _texts(cfg: RunConfig) -> list[str]:
    t = TextSection.of(cfg)
    cut = "truncated" if t.truncation else "longer texts are an error"
    pad = "to the longest text of each batch" if t.padding == "dynamic" else "to max_length"
    return [
        f"tokenise with {t.model}'s tokenizer: at most {t.max_length} tokens ({cut})",
        f"pad {pad}",
    ]


def describe(config_text: str) -> str:
    """The resolved pipeline of a run's config.toml, one step a line."""
    try:
        cfg = loads(config_text, source="config.toml")
    except ConfigError as exc:
        return f"cannot resolve the pipeline: {exc}"
    kind = tasks.find(cfg.run.task)
    inputs = kind.inputs if kind else "images"
    return "\n".join(_texts(cfg) if inputs == "texts" else _images(cfg))
