"""The selected run's open health alerts, each with what to do; hidden when it has none."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tuneterm.tui.rows import ALERT


class AlertsBox(Static):
    DEFAULT_CSS = """
    AlertsBox { height: auto; max-height: 4; background: $error 15%; display: none; }
    """

    def show(self, alerts: list[Any]) -> None:
        self.display = bool(alerts)
        text = Text()
        for a in alerts:
            if text:
                text.append("\n")
            style = "bold red" if a.severity == "error" else "bold yellow"
            text.append(f" {ALERT} {a.kind}: ", style=style)
            text.append(a.message)
            text.append(f" — {a.hint}", style="dim")
        self.update(text)
