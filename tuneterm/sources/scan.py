"""The runs lying under the watched folders: which format each folder holds, and an id
derived from its path (stable across restarts, and never a tuneterm id: those start with a
date, these with their source)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tuneterm.sources.csvlog import METRICS
from tuneterm.sources.hf import state_files
from tuneterm.sources.jsonl import LOG
from tuneterm.sources.mlflowfs import is_run as is_mlflow_run
from tuneterm.sources.tb import EVENT_FILE

SOURCE_PREFIXES = ("tb", "hf", "lightning", "mlflow", "jsonl")
SOURCE_ID = re.compile(r"^(tb|hf|lightning|mlflow|jsonl)-[a-z0-9_]{0,24}-?[0-9a-f]{10}$")
MAX_DEPTH = 8
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "wandb", "site-packages"})
_SLUG = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class Found:
    """A run of another tool: `path` is its folder (a file's folder for single-file logs)."""

    id: str
    source: str
    path: Path
    name: str  # its folder, relative to the watched folder it lies under


def is_source_id(text: str) -> bool:
    return bool(SOURCE_ID.match(text))


def run_id(source: str, path: Path) -> str:
    slug = _SLUG.sub("_", path.name.lower()).strip("_")[:24]
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{source}-{slug}-{digest}" if slug else f"{source}-{digest}"


def kind_of(folder: Path, names: list[str]) -> str:
    """The format a folder holds as one run, or "" (not a run, or look deeper)."""
    if "meta.json" in names and "events" in names:
        return "tuneterm"  # one of tuneterm's own runs: not a source
    if "trainer_state.json" in names or (
        any(n.startswith("checkpoint-") for n in names) and state_files(folder)
    ):
        return "hf"
    if is_mlflow_run(folder):
        return "mlflow"
    if METRICS in names:
        return "lightning"
    if LOG in names:
        return "jsonl"
    if any(n.startswith(EVENT_FILE) for n in names):
        return "tb"
    return ""


def scan(folders: Iterable[Path]) -> list[Found]:
    """Every run under `folders`, in path order; a run's own subfolders are not runs."""
    found: dict[str, Found] = {}
    for top in folders:
        top = top.expanduser().resolve()
        for where, dirs, names in os.walk(top):
            here = Path(where)
            depth = len(here.relative_to(top).parts)
            kind = kind_of(here, [*names, *dirs])
            if kind and kind != "tuneterm":
                rid = run_id(kind, here)
                name = str(here.relative_to(top)) if here != top else top.name
                found.setdefault(rid, Found(rid, kind, here, name))
            if kind in ("hf", "mlflow", "lightning", "jsonl", "tuneterm") or depth >= MAX_DEPTH:
                dirs[:] = []
            else:
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
    return sorted(found.values(), key=lambda f: str(f.path))
