"""torchvision's pretrained weights for the engine, and the checkpoint a run starts from.

`resolve_weights` turns `model.weights` into torchvision's weights enum member (an unknown
name is a `ConfigError` naming the field); `weights_file` says where that file is cached;
`resolve_init` finds the checkpoint `model.init` names. Each kind's launch checks live in its
own engine module (tuneterm/engine/kinds/<kind>/__init__.py: `validate`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig, catalog, launch

if TYPE_CHECKING:
    from tuneterm.store.runs import RunStore


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


def resolve_init(cfg: RunConfig, store: RunStore) -> Path | None:
    init = cfg.model.init
    if not init:
        return None
    if init.startswith("run:"):
        return store.checkpoint_dir(store.resolve(init[4:])) / "best.pt"
    return Path(init).expanduser()
