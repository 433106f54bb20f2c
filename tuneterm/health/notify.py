"""Notifications: a command from settings.toml, run once per alert or end of a run.

    # ~/.config/tuneterm/settings.toml (or $TUNETERM_CONFIG_DIR/settings.toml)
    [notify]
    command = "notify-send tuneterm"     # split like a shell would, never run through one
    timeout = 10                          # seconds; a command that hangs is killed
    on = ["alert", "ended"]               # what to notify
    bell = true                           # the TUI rings the bell on a new alert
    desktop = true                        # ... and sends an OSC 9 desktop notification

The command gets the run and the alert in its environment: TUNETERM_EVENT ("alert" or
"ended"), TUNETERM_RUN_ID, TUNETERM_RUN_NAME, TUNETERM_STATUS, TUNETERM_ALERT (the kind),
TUNETERM_SEVERITY, TUNETERM_MESSAGE, TUNETERM_HINT, and TUNETERM_TEXT (one line for a person).
A command that fails or times out is logged; it never stops the watcher or a run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.config.userdir import config_dir


@dataclass(frozen=True)
class NotifySettings:
    command: list[str] = field(default_factory=list)
    timeout: float = 10.0
    on: tuple[str, ...] = ("alert", "ended")
    bell: bool = True  # the TUI rings the terminal bell on a new alert
    desktop: bool = True  # ... and sends an OSC 9 desktop notification (most terminals show it)
    problem: str = ""  # a settings file that could not be read: said once in the log


def load_notify(path: Path | None = None) -> NotifySettings:
    path = path or config_dir() / "settings.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NotifySettings()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return NotifySettings(problem=f"{path}: {exc}")
    section = data.get("notify") or {}
    raw = section.get("command", "")
    try:
        command = shlex.split(raw) if isinstance(raw, str) else [str(a) for a in raw]
    except ValueError as exc:
        return NotifySettings(problem=f"{path}: [notify] command = {raw!r}: {exc}")
    timeout = section.get("timeout", 10.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        return NotifySettings(problem=f"{path}: [notify] timeout = {timeout!r}: must be > 0")
    on = tuple(section.get("on", ("alert", "ended")))
    bell, desktop = section.get("bell", True), section.get("desktop", True)
    return NotifySettings(command, float(timeout), on, bool(bell), bool(desktop))


def notify(settings: NotifySettings, env: dict[str, str]) -> str:
    """Run the command once with `env` added; returns "" or what went wrong (for the log)."""
    if not settings.command or env.get("TUNETERM_EVENT") not in settings.on:
        return ""
    try:
        done = subprocess.run(
            settings.command,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=settings.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"notify command timed out after {settings.timeout:g} s: {settings.command[0]}"
    except OSError as exc:
        return f"notify command could not run: {settings.command[0]}: {exc.strerror}"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"notify command exited {done.returncode}: {err[-1] if err else ''}"
    return ""


def alert_env(run: Any, status: str, alert: Any | None) -> dict[str, str]:
    """The environment of one notification (`alert` None: the run ended)."""
    name = run.name or run.id
    env = {
        "TUNETERM_EVENT": "alert" if alert is not None else "ended",
        "TUNETERM_RUN_ID": run.id,
        "TUNETERM_RUN_NAME": name,
        "TUNETERM_STATUS": status,
    }
    if alert is not None:
        env |= {
            "TUNETERM_ALERT": alert.kind,
            "TUNETERM_SEVERITY": alert.severity,
            "TUNETERM_MESSAGE": alert.message,
            "TUNETERM_HINT": alert.hint,
            "TUNETERM_TEXT": f"{name}: {alert.kind}: {alert.message}",
        }
    else:
        env["TUNETERM_TEXT"] = f"{name}: {status}"
    return env
