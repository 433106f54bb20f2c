"""The script kind's launch check (TaskSpec.engine): the command can be found and run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tuneterm.config import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from tuneterm.config import RunConfig
    from tuneterm.store.runs import RunStore


def workdir(cfg: RunConfig) -> Path:
    return Path(cfg.script.cwd).expanduser() if cfg.script.cwd else Path.cwd()


def program(cfg: RunConfig) -> str | None:
    """The executable the command runs, as the supervisor will find it; None if none."""
    prog = cfg.script.command[0]
    path = os.environ.get("PATH", os.defpath)
    path = cfg.script.env.get("PATH", path)
    if os.sep in prog:
        where = workdir(cfg) / Path(prog).expanduser()
        return str(where) if where.is_file() and os.access(where, os.X_OK) else None
    return shutil.which(prog, path=path)


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    sc = cfg.script
    here = workdir(cfg)
    if not here.is_dir():
        raise ConfigError([ConfigIssue("script.cwd", sc.cwd, "no such folder")])
    if program(cfg) is None:
        raise ConfigError(
            [
                ConfigIssue(
                    "script.command",
                    sc.command[0],
                    "cannot be found or run (not on PATH, or not an executable file); "
                    "give the program, e.g. python train.py",
                )
            ]
        )
    script = next((a for a in sc.command[1:] if a.endswith(".py")), "")
    if script and not (here / script).is_file():
        raise ConfigError([ConfigIssue("script.command", script, f"no such file in {here}")])


def build(cfg: RunConfig, setup: object) -> NoReturn:
    raise RuntimeError("a script run is run by its supervisor (python -m tuneterm.script)")
