"""The errors a user can act on, at the bottom of the layers: config, tasks and every layer
above raise and collect them. Every one names the field and the value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING: Any = object()  # "no value to show": the issue is about the field itself


def show(value: Any) -> str:
    """A value as it is written in TOML."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem with one field: `field = value: reason`."""

    field: str
    value: Any
    reason: str

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.field}: {self.reason}"
        return f"{self.field} = {show(self.value)}: {self.reason}"


class ConfigError(ValueError):
    """A run config that cannot be launched; carries every issue found."""

    def __init__(self, issues: Iterable[ConfigIssue], source: str = "") -> None:
        self.issues = list(issues)
        self.source = source
        where = f"{source}: " if source else ""
        lines = [f"{where}{issue}" for issue in self.issues]
        super().__init__("\n".join(lines) if lines else f"{where}invalid config")


def path_issues(field: str, value: str, when: str, want: str = "folder") -> list[ConfigIssue]:
    """A path a setting needs: `field` is required (`when` says why, e.g. "data.dataset =
    coco") and must name an existing `want` ("folder" or "file")."""
    if not value:
        return [ConfigIssue(field, "", f"required when {when}")]
    path = Path(value).expanduser()
    found = path.is_dir() if want == "folder" else path.is_file()
    return [] if found else [ConfigIssue(field, value, f"no such {want}")]
