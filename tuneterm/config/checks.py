"""Validation: a parsed config in, a `RunConfig` or a `ConfigError` out.

Structural checks (types, ranges, unknown keys) come from the schema; here are the choice lists,
the cross-field checks and what each kind of run says of a config. No torch: names that need a
library to check (models, weights, checkpoints) are checked at launch (`tuneterm.config.launch`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from tuneterm.config.choices import FEATURE_ADAPT, check_choice, choices
from tuneterm.config.schema import RunConfig
from tuneterm.errors import MISSING as _MISSING
from tuneterm.errors import ConfigError, ConfigIssue, path_issues

if TYPE_CHECKING:
    from tuneterm.tasks.spec import TaskSpec


def get(data: Mapping[str, Any], dotted: str) -> Any:
    """`data["train"]["lr"]` for `"train.lr"`."""
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        info = model.model_fields.get(part)
        if info is None or not isinstance(info.annotation, type):
            return []
        model = info.annotation
    return list(model.model_fields)


def _issues_from(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        field = ".".join(loc)
        reason = _reason(err)
        if err["type"] == "extra_forbidden":
            keys = _known_keys(loc)
            close = difflib.get_close_matches(loc[-1], keys, n=1)
            reason += f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(keys)}"
        value = err.get("input", _MISSING)
        if isinstance(value, dict):
            value = _MISSING
        issues.append(ConfigIssue(field, value, reason))
    return issues


def from_dict(data: Mapping[str, Any], source: str = "") -> RunConfig:
    """Validate a parsed config; raise ConfigError listing every problem."""
    try:
        cfg = RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc), source) from None
    issues = [
        issue
        for field, allowed in choices().items()
        if (issue := check_choice(field, get(cfg.model_dump(), field), allowed, "choice"))
    ]
    if cfg.data.dataset == "folder":
        issues += path_issues("data.root", cfg.data.root, "data.dataset = folder")
    if cfg.data.val_fraction + cfg.data.test_fraction >= 0.9:
        issues.append(
            ConfigIssue(
                "data.test_fraction",
                cfg.data.test_fraction,
                "val_fraction + test_fraction must be < 0.9 "
                f"(val_fraction = {cfg.data.val_fraction})",
            )
        )
    issues += _technique_issues(cfg)
    issues += _dist_issues(cfg)
    if not issues:  # the kind's checks need a known run.task and data.dataset
        issues += _task_issues(cfg)
    if issues:
        raise ConfigError(issues, source)
    return cfg


def _task_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """What the kinds say of this config: its data set belongs to its kind, its metrics are
    ones its kind reports, and every kind's own checks (tuneterm/tasks/)."""
    from tuneterm import tasks

    spec = tasks.get(cfg.run.task)
    issues = []
    ds = cfg.data.dataset
    if ds not in spec.datasets:
        owners = tasks.kind_of_dataset(ds)
        if owners and cfg.run.task == "classify":
            owner = tasks.get(owners[0])
            reason = f'a {owner.noun} data set; set run.task = "{owner.name}"'
        else:
            reason = (
                f"not a {spec.noun} data set; for run.task = {spec.name} use "
                f"{', '.join(spec.datasets)}"
            )
        issues.append(ConfigIssue("data.dataset", ds, reason))
    for spec_ in (tasks.get(n) for n in tasks.names()):
        for check in spec_.checks:
            issues += check(cfg)
    reported = {m.name for m in spec.val_reported}
    m = cfg.train.metric
    if (
        m != "val_acc"
        and m not in spec.select
        and not any(i.field == "train.metric" for i in issues)
    ):
        issues.append(
            ConfigIssue("train.metric", m, f"{spec.name} runs pick by {', '.join(spec.select)}")
        )
    es = cfg.early_stop.metric
    if (
        cfg.early_stop.enabled
        and es not in reported
        and not any(i.field == "early_stop.metric" for i in issues)
    ):
        issues.append(
            ConfigIssue(
                "early_stop.metric", es, f"{spec.name} runs report {', '.join(sorted(reported))}"
            )
        )
    return issues


def _technique_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """Cross-field checks of the technique sections."""
    issues = []
    if cfg.freeze.strategy == "first_n" and cfg.freeze.stages < 1:
        issues.append(ConfigIssue("freeze.stages", 0, "must be >= 1 when strategy = first_n"))
    t = cfg.distill.teacher
    if t and not (t.startswith(("run:", "torchvision:", "timm:", "hf:")) or t.endswith(".pt")):
        issues.append(
            ConfigIssue(
                "distill.teacher",
                t,
                'must be "", "run:<id>", "torchvision:<model>", "timm:<model>", "hf:<model>" '
                "or a .pt file",
            )
        )
    elif t.endswith(".pt") and not Path(t).expanduser().is_file():
        issues.append(ConfigIssue("distill.teacher", t, "no such checkpoint file"))
    a = cfg.adapt
    if a.method != "none" and a.target_shift == "none" and not a.target_root:
        issues.append(
            ConfigIssue("adapt.target_shift", "none", "set it or adapt.target_root for a target")
        )
    if a.target_root and not Path(a.target_root).expanduser().is_dir():
        issues.append(ConfigIssue("adapt.target_root", a.target_root, "no such folder"))
    if a.method in FEATURE_ADAPT and (cfg.mix.mixup > 0 or cfg.mix.cutmix > 0):
        issues.append(
            ConfigIssue(
                "adapt.method",
                a.method,
                "trains on source + unlabeled target batches; not with mix.mixup or mix.cutmix",
            )
        )
    if cfg.lora.enabled and cfg.freeze.strategy != "none":
        issues.append(
            ConfigIssue("freeze.strategy", cfg.freeze.strategy, "cannot combine with lora")
        )
    return issues


def _dist_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """What DistributedDataParallel cannot do here; checked without torch."""
    t = cfg.train
    issues = []
    if t.gpus > 1 or cfg.dist.nnodes > 1:
        if not _spec(cfg).multi_gpu:
            issues.append(
                ConfigIssue(
                    "train.gpus", t.gpus, f'run.task = "{cfg.run.task}" trains in one process'
                )
            )
        if t.device.startswith("cuda:"):
            issues.append(
                ConfigIssue(
                    "train.device",
                    t.device,
                    'each process uses cuda:<local rank>; use "auto" or "cuda" with train.gpus > 1',
                )
            )
        if cfg.freeze.strategy == "gradual":
            issues.append(
                ConfigIssue(
                    "freeze.strategy",
                    "gradual",
                    "unfreezing changes what DDP synchronises; not with train.gpus > 1",
                )
            )
        if cfg.adapt.method in ("dann", "cdan"):
            issues.append(
                ConfigIssue(
                    "adapt.method",
                    cfg.adapt.method,
                    "its domain classifier is outside the DDP model; not with train.gpus > 1",
                )
            )
    return issues


def _spec(cfg: RunConfig) -> TaskSpec:
    from tuneterm import tasks

    return tasks.get(cfg.run.task)


def missing_packages(cfg: RunConfig) -> list[ConfigIssue]:
    """Optional dependencies the config needs and this machine lacks (the install extras).
    Checked at launch, not when a config is read: a run made elsewhere stays readable."""
    issues = []
    spec = _spec(cfg)
    missing = [p for p in spec.extras if not installed(p)]
    if missing:
        issues.append(
            ConfigIssue(
                "run.task",
                spec.name,
                f"needs {' and '.join(missing)}, not installed here: "
                f"pip install 'tuneterm[{spec.extra_name}]'",
            )
        )
    if cfg.data.dataset == "hf" and not installed("datasets"):
        issues.append(
            ConfigIssue(
                "data.dataset",
                "hf",
                "needs datasets, not installed here: pip install 'tuneterm[datasets]'",
            )
        )
    if cfg.lora.enabled and not installed("peft"):
        issues.append(
            ConfigIssue(
                "lora.enabled", True, "needs peft, not installed here: pip install 'tuneterm[lora]'"
            )
        )
    return issues


def installed(package: str) -> bool:
    """Is `package` importable? Without importing it (transformers takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules with no spec
        return False
