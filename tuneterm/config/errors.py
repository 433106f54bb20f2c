"""The errors a run config can raise: every one names the field and the value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
