"""Which folders are watched: `[sources] paths = [...]` in settings.toml (what `tuneterm watch
DIR...` adds to), plus `$TUNETERM_SOURCES` (folders separated by `:`) for one shell."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tuneterm.config import ConfigError, ConfigIssue
from tuneterm.config.userdir import config_dir

ENV_SOURCES = "TUNETERM_SOURCES"
LIVE_S = 120.0  # seconds without a write before a run of another tool reads `ended`


@dataclass(frozen=True)
class SourceSettings:
    paths: list[Path] = field(default_factory=list)
    live_s: float = LIVE_S
    problem: str = ""  # settings.toml could not be read: said by `watch`


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def load_settings() -> SourceSettings:
    path = settings_path()
    env = [Path(p).expanduser() for p in os.environ.get(ENV_SOURCES, "").split(os.pathsep) if p]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SourceSettings(env)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return SourceSettings(env, problem=f"{path}: {exc}")
    section = data.get("sources") or {}
    raw = section.get("paths", [])
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        return SourceSettings(
            env, problem=f"{path}: [sources] paths = {raw!r}: must be a list of folders"
        )
    live = section.get("live_s", LIVE_S)
    if not isinstance(live, int | float) or live <= 0:
        return SourceSettings(env, problem=f"{path}: [sources] live_s = {live!r}: must be > 0")
    paths = list(dict.fromkeys([*env, *(Path(p).expanduser() for p in raw)]))
    return SourceSettings(paths, float(live))


def load_paths() -> list[Path]:
    return load_settings().paths


def watch_paths(folders: list[str]) -> list[Path]:
    """Add folders to `[sources] paths` in settings.toml (kept as written, comments and all);
    the folders that were added. A folder that does not exist is an error, and nothing is
    written."""
    import tomlkit

    added = []
    for text in folders:
        p = Path(text).expanduser().resolve()
        if not p.is_dir():
            raise ConfigError([ConfigIssue("DIR", text, "not a folder")])
        added.append(p)
    path = settings_path()
    try:
        doc = (
            tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
        )
    except Exception as exc:
        raise ConfigError([ConfigIssue(str(path), "", f"cannot be read: {exc}")]) from None
    section = doc.setdefault("sources", tomlkit.table())
    paths = [str(p) for p in section.get("paths", [])]
    new = [p for p in added if str(p) not in paths]
    section["paths"] = [*paths, *(str(p) for p in new)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return new
