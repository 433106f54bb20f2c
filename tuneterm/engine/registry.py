"""Things users pick by name: the launch checks of classify runs, and torchvision's weights
for the engine.

`validate(cfg, store)` runs before a run is created: it rejects unknown models and weights,
checkpoints and runs that do not exist or are not checkpoints, and data the scan in
`datacheck.py` finds unusable, with the same `ConfigError` that schema validation raises, so
nothing half-made is left. It imports no torch: names come from the model catalog
(`tuneterm.config.catalog`). `resolve_weights` and `weights_file` are the engine's (torch).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig, catalog, launch
from tuneterm.config.launch import WEIGHTS_HOST as WEIGHTS_HOST  # re-exported
from tuneterm.config.launch import device_issues as device_issues  # re-exported
from tuneterm.config.launch import reachable as _reachable  # noqa: F401  # textcls uses it

if TYPE_CHECKING:
    from tuneterm.store.runs import RunStore


def classification_models() -> list[str]:
    """torchvision's classifiers, from the catalog (no torch import once it is cached)."""
    return catalog.models("classify")


@dataclass(frozen=True)
class WeightsFile:
    """Where torchvision's weights API keeps one pretrained file."""

    enum_name: str
    url: str
    path: Path

    @property
    def cached(self) -> bool:
        return self.path.is_file()

    def missing_message(self) -> str:
        return launch.missing_weights_message(self.enum_name, self.url, self.path)


def resolve_weights(model: str, weights: str) -> Any | None:
    """The torchvision weights enum member for `model.weights`, or None for random init."""
    if weights.lower() == "none":
        return None
    import torchvision

    enum = torchvision.models.get_model_weights(model)
    try:
        return enum[weights]
    except KeyError:
        allowed = ["DEFAULT", "none", *[w.name for w in enum]]
        close = difflib.get_close_matches(weights, allowed, n=1)
        hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
        raise ConfigError(
            [ConfigIssue("model.weights", weights, f"unknown weights; {hint}")]
        ) from None


def weights_file(member: Any) -> WeightsFile:
    w = catalog.Weights(type(member).__name__, member.name, member.url)
    return WeightsFile(w.label, w.url, catalog.weights_path(w))


def validate(cfg: RunConfig, store: RunStore | None = None) -> None:
    """Every check of a classify run before it is created; raises ConfigError naming each
    field. No torch import (the catalog is cached per library version)."""
    from tuneterm.config import sources
    from tuneterm.engine.datacheck import check as check_data

    if sources.split(cfg.model)[0] == "torchvision":
        issues = launch.classifier_issues(cfg)
    else:
        issues = sources.model_issues(cfg)
        issues += _weights_file_issues(cfg, issues)
    issues += launch.init_issues(cfg, store)
    issues += launch.teacher_issues(cfg, store)
    issues += sources.teacher_issues(cfg)
    issues += check_data(cfg)
    issues += launch.device_issues(cfg)
    if issues:
        raise ConfigError(issues)


def _weights_file_issues(cfg: RunConfig, found: list[ConfigIssue]) -> list[ConfigIssue]:
    """A timm weights file that is not for model.name's architecture (read with torch)."""
    from tuneterm.config import sources

    source, name = sources.split(cfg.model)
    file = sources.weights_file(cfg.model.weights)
    if source != "timm" or file is None or found:
        return []
    from tuneterm.engine.kinds.classify.weightsfit import timm_file_problem

    problem = timm_file_problem(name, file)
    return [ConfigIssue("model.weights", cfg.model.weights, problem)] if problem else []


def resolve_init(cfg: RunConfig, store: RunStore) -> Path | None:
    init = cfg.model.init
    if not init:
        return None
    if init.startswith("run:"):
        return store.checkpoint_dir(store.resolve(init[4:])) / "best.pt"
    return Path(init).expanduser()
