"""Run ids and names: readable, sortable, and unable to escape the runs folder."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

ID_RE = re.compile(r"^\d{8}-\d{6}-[a-z0-9_]{1,40}-[0-9a-f]{4}$")
# Prefixes typed by a person: id characters only, so no '/', '..' or absolute paths.
PREFIX_RE = re.compile(r"^[0-9a-z_-]{1,80}$")
NAME_RE = re.compile(r"^[\w .,:+()@#=-]{0,80}$")
_SLUG_RE = re.compile(r"[^a-z0-9_]+")


def new_run_id(model: str, now: datetime | None = None) -> str:
    """`20261123-153012-resnet18-a1b2`: sorts by creation time, says what it trains."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    slug = _SLUG_RE.sub("_", model.lower()).strip("_")[:40] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def is_run_id(text: str) -> bool:
    return bool(ID_RE.match(text))


def check_prefix(text: str) -> str:
    if not PREFIX_RE.match(text):
        raise ValueError(
            f"run = {text!r}: not a run id or prefix "
            "(allowed: lower-case letters, digits, '-', '_')"
        )
    return text


def check_name(name: str) -> str:
    """Names are display text, never paths: no slashes, no control characters."""
    if not NAME_RE.match(name) or (name.strip(". ") == "" and name != ""):
        raise ValueError(
            "must be at most 80 letters, digits, spaces or . , : + ( ) @ # = - _ (no '/' or '..')"
        )
    if ".." in name:
        raise ValueError("must not contain '..'")
    return name
