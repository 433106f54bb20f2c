"""Where the TUI keeps what a person chose: theme, keymap overrides and their own themes.

$TUNETERM_CONFIG_DIR or ~/.config/tuneterm/
    settings.toml   theme = "tuneterm-dark"
    keymap.toml     [keys] binding-id = "key[,key]"   (ids are listed by `?`)
    themes/         *.toml theme files, loaded next to the built-in ones
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from tuneterm.config.userdir import config_dir

# The built-in theme files ship inside the package (pyproject's package-data), like the
# stylesheet beside app.py.
BUILTIN_THEMES_DIR = Path(__file__).resolve().parent / "builtin_themes"


@dataclass
class Settings:
    theme: str = "tuneterm-dark"
    keymap: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # shown once, never fatal

    @property
    def dir(self) -> Path:
        return config_dir()

    @property
    def themes_dir(self) -> Path:
        return self.dir / "themes"


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: ignored ({exc})")
        return {}


def load_settings() -> Settings:
    s = Settings()
    data = _read_toml(s.dir / "settings.toml", s.problems)
    if isinstance(data.get("theme"), str):
        s.theme = data["theme"]
    keys = _read_toml(s.dir / "keymap.toml", s.problems)
    for binding_id, key in _flatten(keys.get("keys", keys)).items():
        if isinstance(key, str) and key.strip():
            s.keymap[binding_id] = key.strip()
        else:
            s.problems.append(f"keymap.toml: {binding_id} = {key!r}: must be a key name string")
    return s


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`run.stop = "ctrl+s"` parses as {"run": {"stop": ...}}; binding ids are dotted names."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def save_theme(theme: str) -> str:
    """Remember the theme; returns '' or why it could not be saved."""
    path = config_dir() / "settings.toml"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            doc = tomlkit.parse(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, Exception):
            doc = tomlkit.document()
        doc["theme"] = theme
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        return f"could not save the theme to {path}: {exc.strerror}"
    return ""
