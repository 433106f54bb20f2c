"""Theme files: `name.toml` with Textual theme colours, built-in (builtin_themes/) or the
user's."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from textual.theme import Theme

_COLOURS = (
    "primary", "secondary", "warning", "error", "success", "accent",
    "foreground", "background", "surface", "panel", "boost",
)  # fmt: skip


def load_theme(path: Path) -> Theme:
    """Read one theme file; raises ValueError naming the file and the bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    name = data.get("name") or path.stem
    if not isinstance(data.get("primary"), str):
        raise ValueError(f'{path}: primary is required, e.g. primary = "#4ea1d3"')
    unknown = set(data) - {*_COLOURS, "name", "dark", "variables"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    colours: dict[str, Any] = {k: str(data[k]) for k in _COLOURS if k in data}
    variables = {str(k): str(v) for k, v in dict(data.get("variables", {})).items()}
    return Theme(name=str(name), dark=bool(data.get("dark", True)), variables=variables, **colours)


def load_themes(*folders: Path) -> tuple[list[Theme], list[str]]:
    """Every `*.toml` theme in the folders (later folders win); and what could not load."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme(path)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
