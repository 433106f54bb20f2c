"""TOML in and out: read a config file (with overrides), write one back with its comments."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit
from pydantic import BaseModel

from tuneterm.config.checks import from_dict
from tuneterm.config.choices import STATIC, one_of
from tuneterm.config.kindrules import choices
from tuneterm.config.overrides import apply_overrides
from tuneterm.config.schema import RunConfig
from tuneterm.errors import MISSING, ConfigError, ConfigIssue

if TYPE_CHECKING:
    from tuneterm.store.runs import RunStore


def parse_toml(text: str, source: str = "") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [ConfigIssue("(toml)", MISSING, f"syntax error: {exc}")], source
        ) from None


def load(path: str | Path, overrides: Iterable[str] = ()) -> RunConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("config", str(p), f"cannot read: {exc.strerror}")]) from None
    return from_dict(apply_overrides(parse_toml(text, str(p)), overrides), str(p))


def loads(text: str, overrides: Iterable[str] = (), source: str = "") -> RunConfig:
    return from_dict(apply_overrides(parse_toml(text, source), overrides), source)


def run_config(store: RunStore, run_id: str) -> RunConfig:
    """A run's config as it was launched (the store keeps it as TOML and knows no schema)."""
    path = store.config_path(run_id)
    return loads(path.read_text(encoding="utf-8"), source=str(path))


def to_toml(cfg: RunConfig, comments: bool = False) -> str:
    """The full config as TOML; with comments, each key carries its description (and, for the
    registries' keys such as run.task, what the registry holds now)."""
    registries = {k: v for k, v in choices().items() if k not in STATIC} if comments else {}
    doc = tomlkit.document()
    if comments:
        doc.add(
            tomlkit.comment("tuneterm run config. Every key is optional; shown are the defaults.")
        )
        doc.add(
            tomlkit.comment("Override any key from the CLI: tuneterm run FILE --set train.lr=3e-4")
        )
    for section_name, _ in RunConfig.tables():
        section: BaseModel = cfg.section(section_name)
        table = tomlkit.table()
        for key, info in type(section).model_fields.items():
            if comments and info.description:
                table.add(tomlkit.comment(info.description))
            if f"{section_name}.{key}" in registries:
                table.add(tomlkit.comment(f"One of {one_of(registries[f'{section_name}.{key}'])}"))
            table.add(key, getattr(section, key))
        doc.add(tomlkit.nl())
        doc.add(section_name, table)
    return tomlkit.dumps(doc).lstrip("\n")


def template() -> str:
    return to_toml(RunConfig(), comments=True)


def flatten(cfg: RunConfig) -> dict[str, Any]:
    """`{"train.lr": 0.001, ...}`: the form compare and filters use."""
    out: dict[str, Any] = {}
    dumped = cfg.model_dump()
    for section, _ in RunConfig.tables():
        for key, value in dumped[section].items():
            if section == "script" and key == "args":  # a script's own --key value arguments
                out.update({f"args.{k}": v for k, v in value.items()})
            else:
                out[f"{section}.{key}"] = value
    return out
