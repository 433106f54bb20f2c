"""The run list: one row per run, updated in place so the cursor never jumps."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import DataTable

from tuneterm.store import RunInfo
from tuneterm.tui.rows import COLUMNS, STATUS_STYLE, cells


class RunTable(DataTable[Text]):
    DEFAULT_CSS = """
    RunTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.order: list[str] = []
        self.infos: dict[str, RunInfo] = {}
        self._shown: dict[str, dict[str, str]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected_id(self) -> str | None:
        if not self.order or self.cursor_row < 0 or self.cursor_row >= len(self.order):
            return None
        return self.order[self.cursor_row]

    def _styled(self, key: str, text: str, info: RunInfo, colour: str | None) -> Text:
        if key == "status":
            return Text(text, style=STATUS_STYLE.get(text, ""))
        if key == "mark":
            return Text(text, style=f"bold {colour}" if colour else "")
        if key == "id":
            return Text(text, style="dim")
        if key == "name" and colour:
            return Text(text, style=colour)
        return Text(text)

    def set_runs(self, runs: list[RunInfo], marked: dict[str, str]) -> None:
        """Show `runs` in this order; `marked` maps run id to its compare colour."""
        now = time.time()
        selected = self.selected_id
        order = [r.id for r in runs]
        self.infos = {r.id: r for r in runs}
        rows = {}
        for r in runs:
            row = cells(r, r.id in marked, now)
            row["colour"] = marked.get(r.id, "")
            rows[r.id] = row
        if order != self.order:
            self.clear()
            self.order = order
            for run_id in order:
                row = rows[run_id]
                info = self.infos[run_id]
                colour = marked.get(run_id)
                self.add_row(
                    *[self._styled(k, row[k], info, colour) for k, _ in COLUMNS], key=run_id
                )
            if selected in self.infos:
                self.move_cursor(row=order.index(selected), animate=False)
        else:
            for run_id in order:
                old = self._shown.get(run_id, {})
                new = rows[run_id]
                recolour = old.get("colour") != new["colour"]
                for key, _ in COLUMNS:
                    if old.get(key) != new[key] or (recolour and key in ("mark", "name")):
                        text = self._styled(key, new[key], self.infos[run_id], marked.get(run_id))
                        self.update_cell(run_id, key, text)
        self._shown = rows
