"""What a listing needs of each source run, under tuneterm's own cache
(`$XDG_CACHE_HOME/tuneterm/sources/<id>.json`), keyed by its files' paths, sizes and mtimes:
a second start reads nothing that has not changed, and a run that grew is read from where the
last process stopped. Nothing is ever written beside the runs themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tuneterm.config.catalog import cache_dir
from tuneterm.store.files import atomic_write_text

VERSION = 1
Stamps = dict[str, list[int]]


def folder() -> Path:
    return cache_dir() / "sources"


def stamps(files: list[Path]) -> Stamps:
    out: Stamps = {}
    for p in files:
        try:
            st = os.stat(p)
        except OSError:
            continue
        out[str(p)] = [st.st_size, st.st_mtime_ns]
    return out


def load(run_id: str, path: Path) -> tuple[Stamps, dict[str, Any]] | None:
    """The stamps and the run's state as last saved, or None (none, another version, a
    damaged file, another folder with the same id)."""
    try:
        raw = json.loads((folder() / f"{run_id}.json").read_bytes())
        if raw.get("version") != VERSION or raw.get("path") != str(path):
            return None
        return dict(raw["files"]), dict(raw["state"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save(run_id: str, path: Path, files: Stamps, state: dict[str, Any]) -> None:
    body = {"version": VERSION, "path": str(path), "files": files, "state": state}
    try:
        folder().mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder() / f"{run_id}.json", json.dumps(body), fsync=False)
    except OSError:
        pass  # a cache that cannot be written costs only time


def mtime_of(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0
