"""Validation: a parsed config in, a `RunConfig` or a `ConfigError` out.

Structural checks (types, ranges, unknown keys) come from the schema; here are the choice lists,
the cross-field checks and what each kind of run says of a config. No torch: names that need a
library to check (models, weights, checkpoints) are checked at launch (`tuneterm.config.launch`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tuneterm.config.choices import FEATURE_ADAPT, STATIC, check_choice
from tuneterm.config.kindrules import kind_rules
from tuneterm.config.schema import RunConfig
from tuneterm.config.section import kind_sections
from tuneterm.errors import MISSING as _MISSING
from tuneterm.errors import ConfigError, ConfigIssue, path_issues


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
    if len(loc) == 1:
        return [name for name, _ in RunConfig.tables()]
    model: type[BaseModel] | None = dict(RunConfig.tables()).get(loc[0])
    for part in loc[1:-1]:
        info = model.model_fields.get(part) if model else None
        if info is None or not isinstance(info.annotation, type):
            return []
        model = info.annotation
    return list(model.model_fields) if model else []


def _issues_from(exc: ValidationError, table: str = "") -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = tuple(str(p) for p in (table, *err["loc"]) if p != "")
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
    rules = kind_rules()
    lists = {**rules.choices(), **STATIC}  # first: this loads plug-in kinds and their tables
    cfg = _validated(data, source)
    issues = [
        issue
        for field, allowed in lists.items()
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
    issues += rules.structural_issues(cfg) + _dist_issues(cfg)
    if not issues:  # the kind's checks need a known run.task and data.dataset
        issues += rules.kind_issues(cfg)
    if issues:
        raise ConfigError(issues, source)
    return cfg


def _validated(data: Mapping[str, Any], source: str) -> RunConfig:
    """The schema's checks: each kind's table by its own section, then the rest (every problem
    of both at once, each named by its full key)."""
    tables = kind_sections()
    rest = {k: v for k, v in data.items() if k not in tables}
    issues, sections = [], {}
    for table, section in tables.items():
        try:
            sections[table] = section.model_validate(data.get(table) or {})
        except ValidationError as exc:
            issues += _issues_from(exc, table)
    try:
        cfg = RunConfig.model_validate(_known_only(rest, issues) | sections)
    except ValidationError as exc:
        issues = _issues_from(exc) + issues
    if issues:
        raise ConfigError(issues, source)
    return cfg


def _known_only(data: dict[str, Any], issues: list[ConfigIssue]) -> dict[str, Any]:
    """`data` without unknown tables, each of which becomes an "unknown key" issue."""
    known = [name for name, _ in RunConfig.tables()]
    for key in [k for k in data if k not in known]:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        value = _MISSING if isinstance(data[key], dict) else data[key]
        issues.append(ConfigIssue(key, value, f"unknown key; {hint}"))
        del data[key]
    return data


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


def installed(package: str) -> bool:
    """Is `package` importable? Without importing it (transformers takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules with no spec
        return False
