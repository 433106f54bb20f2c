"""Where a person's own tuneterm settings live: $TUNETERM_CONFIG_DIR, else
$XDG_CONFIG_HOME/tuneterm, else ~/.config/tuneterm (settings.toml, keymap.toml, themes/)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CONFIG_DIR = "TUNETERM_CONFIG_DIR"


def config_dir() -> Path:
    env = os.environ.get(ENV_CONFIG_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(base).expanduser() / "tuneterm"
