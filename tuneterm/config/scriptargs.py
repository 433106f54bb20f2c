"""A script's command line as config: its `--key value` arguments, its label, its placeholders.

Pure functions over argv (no shell is ever involved), shared by the schema (`script.args`), the
launch checks and sweeps over a command (`--lr {lr}`).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

RESUME_PLACEHOLDERS = ("checkpoint_dir", "run_dir")
_KEY = re.compile(r"^--?([A-Za-z_][\w.-]*)$")


def _value(raw: str) -> Any:
    """`3e-4` -> 0.0003, `8` -> 8, `true` -> True; anything else stays a string."""
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def command_args(argv: list[str]) -> dict[str, Any]:
    """`--lr 3e-4 --epochs=2 --fp16` -> {"lr": 0.0003, "epochs": 2, "fp16": True}."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "--":
            continue
        key, eq, raw = arg.partition("=")
        m = _KEY.match(key)
        if m is None:
            continue
        name = m.group(1).replace("-", "_")
        if eq:
            out[name] = _value(raw)
        elif i < len(argv) and not _KEY.match(argv[i]):
            out[name] = _value(argv[i])
            i += 1
        else:
            out[name] = True
    return out


def command_label(argv: list[str]) -> str:
    """What the run list shows as the run's model: the script, not its interpreter."""
    skip = {"-m", "-u", "-O", "-B"}
    prog = Path(argv[0]).name if argv else ""
    if prog.startswith("python") or prog in ("uv", "torchrun", "accelerate"):
        rest = [a for a in argv[1:] if a not in skip and not a.startswith("-")]
        if rest:
            prog = Path(rest[0]).name
    stem = prog.removesuffix(".py").replace(".", "-")
    return re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:40] or "script"


def placeholders(args: list[str]) -> list[str]:
    """The `{name}` fields of a list of arguments, in order, each once."""
    out: dict[str, None] = {}
    for arg in args:
        try:
            parsed = list(string.Formatter().parse(arg))
        except ValueError:
            continue
        for _, field, _, _ in parsed:
            if field is not None:
                out[field] = None
    return list(out)


def fill(args: list[str], values: dict[str, str]) -> list[str]:
    """Each argument with its `{name}` fields filled (no attribute or index lookups)."""
    out = []
    for arg in args:
        parts = []
        for text, field, _, _ in string.Formatter().parse(arg):
            parts.append(text)
            if field is not None:
                parts.append(values[field])
        out.append("".join(parts))
    return out


def launch_folder(cwd: str, here: Path) -> str:
    """`script.cwd` as stored in a run's config: absolute, and `here` (the folder `run` or
    `sweep` was called from) when empty, so a resume or the queue starts the script where it
    was launched, wherever they are called from."""
    where = Path(cwd).expanduser() if cwd else here
    return str(where if where.is_absolute() else (here / where).resolve())
