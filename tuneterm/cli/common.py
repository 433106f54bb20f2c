"""What every command module shares: exit codes, the run store, output, error reporting.

Exit codes: 0 ok (run completed); 1 run failed or crashed, or engine did not start;
2 invalid config or input (nothing created); 3 action does not fit the run's status;
4 run was stopped before completing; 130 interrupted while following.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from tuneterm.config import ConfigError, ConfigIssue
from tuneterm.runs.view import status_style
from tuneterm.sources import sourced_store
from tuneterm.store import ids
from tuneterm.store.runs import RunStore

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_STATE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
# `stop`: the run did not end within its stop grace period and was killed; it still runs.
EXIT_KILLED, EXIT_ALIVE = 5, 6
STATUS_EXIT = {
    "completed": EXIT_OK,
    "failed": EXIT_FAILED,
    "crashed": EXIT_FAILED,
    "orphaned": EXIT_FAILED,
    "unreadable": EXIT_FAILED,
    "stopped": EXIT_STOPPED,
}

Command = Callable[[argparse.Namespace], int]
# The help of the arguments many commands share, written once.
RUN_HELP = "a run: its id, a unique prefix of the id, or its name"
RUNS_HELP = "runs: ids, unique id prefixes or names"
CONFIG_HELP = "the run's TOML config (tuneterm init writes a commented one)"
SET_HELP = "override a config key, e.g. train.lr=3e-4 (repeatable)"
# add(name, func, help, json_flag=True) -> the command's parser (see tuneterm.cli.build_parser)
AddCommand = Callable[..., argparse.ArgumentParser]

__all__ = ["EXIT_OK", "STATUS_EXIT", "AddCommand", "status_style"]


def store_of(args: argparse.Namespace) -> RunStore:
    """The runs folder, plus the runs of other tools in the watched folders (tuneterm watch)."""
    return sourced_store(args.runs_dir)


def _finite(obj: Any) -> Any:
    """`obj` with each NaN or infinity as the string "NaN", "Infinity" or "-Infinity"."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def json_text(obj: Any, indent: int | None = None) -> str:
    """Standard JSON (what jq and every parser read): a non-finite value, which a run may
    hold (a NaN loss), is written as a string that `float()` reads back."""
    try:
        return json.dumps(obj, indent=indent, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), indent=indent, default=str, allow_nan=False)


def out(obj: Any) -> None:
    print(json_text(obj, indent=1))


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def fail(message: str, code: int, as_json: bool) -> int:
    print(f"tuneterm: {message}", file=sys.stderr)
    if as_json:
        out({"error": message, "exit_code": code})
    return code


def check_name(name: str) -> None:
    if name:
        try:
            ids.check_name(name)
        except ValueError as exc:
            raise ConfigError([ConfigIssue("--name", name, str(exc))]) from None


def queue_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", action="store_true", help="wait in the run queue for a free slot")
    p.add_argument(
        "--no-start", action="store_true", help="with --queue: do not start the scheduler"
    )


def open_tui(args: argparse.Namespace, hosts: list[Any] | None = None) -> int:
    """The TUI; with `hosts` (HostSpecs from --host), the fleet view over them."""
    from tuneterm.tui.app import run_app

    if hosts:
        from tuneterm.tui.screens.fleet import run_fleet

        return run_fleet(hosts)
    return run_app(args.runs_dir)
