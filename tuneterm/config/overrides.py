"""`--set section.key=value` overrides, applied to a parsed config before it is validated."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from typing import Any

from tuneterm.errors import ConfigError, ConfigIssue


def parse_value(raw: str) -> Any:
    """The value read as TOML; a bare word such as resnet18 is a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings; the value is read as TOML, else as a string."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(
                [ConfigIssue("--set", item, "expected section.key=value, e.g. train.lr=3e-4")]
            )
        section, name = parts
        node = out.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError([ConfigIssue(section, node, "is not a section")])
        node[name] = parse_value(raw.strip())
    return out
