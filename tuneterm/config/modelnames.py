"""Model names as the editor offers and checks them while a config is typed: from the same
catalogs as `tuneterm models` (torchvision's, timm's cached names, the Hugging Face cache),
without torch and without the network. The launch checks (`sources.model_issues`,
`launch.py`) still run in full when a run starts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuneterm.config import catalog, sources
from tuneterm.errors import ConfigIssue

if TYPE_CHECKING:
    from tuneterm.config.schema import RunConfig


@dataclass(frozen=True)
class ModelChoice:
    """One value `model.name` can take: `resnet18`, `timm/convnext_atto.d2_in1k`, `hf/ORG/NAME`."""

    value: str
    source: str
    note: str = ""


def choices(source: str, pretrained: bool = False) -> list[ModelChoice]:
    """The names of one source, spelled as `model.name` takes them (timm and hf prefixed).
    Building timm's or torchvision's list the first time imports them (seconds): call from a
    worker. A source whose package is missing offers nothing."""
    if sources.missing_package(source):
        return []
    prefix = "" if source == "torchvision" else f"{source}/"
    names = sources.listing(source, "", pretrained)
    if source == "timm" and not pretrained:  # its architectures, then its arch.tag weights
        names |= {n: "pretrained" for n in sources.listing(source, "", True)}
    return [
        ModelChoice(prefix + name, source, note)
        for name, note in names.items()
        if name not in ("DIR", "ORG/NAME")  # the hf forms to type, not names
    ]


def quick_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """`model.name` checked as it is typed, where that is cheap: a torchvision classifier
    against the catalog, a timm architecture and tag against timm's cached names (when cached),
    an hf name as a folder or ORG/NAME. No torch, no network."""
    if cfg.run.task != "classify":
        return []
    source, name = sources.split(cfg.model)
    if source == "torchvision" and name != "none":
        return _unknown(name, catalog.models("classify"), "model", "tuneterm models")
    if source == "timm":
        cached = sources.timm_cached()
        if cached is None:
            return []
        arch, _, tag = name.partition(".")
        found = _unknown(
            arch, cached["architectures"], "timm model", "tuneterm models --source timm"
        )
        if found or not tag or name in cached["pretrained"]:
            return [ConfigIssue("model.name", cfg.model.name, i.reason) for i in found]
        tags = [n for n in cached["pretrained"] if n.startswith(arch + ".")]
        hint = f"{arch} has {', '.join(tags)}" if tags else f"{arch} has no pretrained weights"
        return [ConfigIssue("model.name", cfg.model.name, f"unknown pretrained tag; {hint}")]
    if source == "hf":
        return sources.hf_name_issues(cfg, name)
    return []


def _unknown(name: str, known: list[str], what: str, command: str) -> list[ConfigIssue]:
    if name in known:
        return []
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}?" if close else f"run `{command}` to list them"
    return [ConfigIssue("model.name", name, f"unknown {what}; {hint}")]
