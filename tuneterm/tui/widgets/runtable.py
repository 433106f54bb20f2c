"""The run list: renders only the rows on screen, so 1,000 runs cost what 20 do.

A DataTable measures every cell of every row on each change; with a live list of a thousand
runs that is hundreds of milliseconds per update. Here `render_line` builds the visible rows
on demand (toolong's approach) and an update only replaces the row data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuneterm.store import RunInfo
from tuneterm.tui.rows import ALERT, COLUMNS, STATUS_STYLE, cells, fit_columns

MAX_WIDTH = {"name": 28, "id": 30, "model": 18, "device": 10}


class RunTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    RunTable { height: 1fr; }
    RunTable > .runtable--header { text-style: bold; background: $panel; }
    RunTable > .runtable--cursor { background: $primary 30%; }
    RunTable:focus > .runtable--cursor { background: $primary 60%; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"runtable--header", "runtable--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False, id="list.up", tooltip="Select the run above"),
        Binding(
            "down,j", "move(1)", "Down", show=False, id="list.down", tooltip="Select the run below"
        ),
        Binding(
            "pageup",
            "page(-1)",
            "Page up",
            show=False,
            id="list.page_up",
            tooltip="Move a page up the list",
        ),
        Binding(
            "pagedown",
            "page(1)",
            "Page down",
            show=False,
            id="list.page_down",
            tooltip="Move a page down the list",
        ),
        Binding(
            "home",
            "move(-1000000000)",
            "First run",
            show=False,
            id="list.first",
            tooltip="Select the first run of the list",
        ),
        Binding(
            "end",
            "move(1000000000)",
            "Last run",
            show=False,
            id="list.last",
            tooltip="Select the last run of the list",
        ),
    ]

    @dataclass
    class Highlighted(Message):
        run_id: str | None

    cursor_row: reactive[int] = reactive(0, always_update=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.order: list[str] = []
        self.infos: dict[str, RunInfo] = {}
        self.marked: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []
        self.natural: dict[str, int] = {k: len(label) for k, label in COLUMNS}
        self.widths: dict[str, int] = dict(self.natural)  # the columns shown, in order

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def selected_id(self) -> str | None:
        if not self.order:
            return None
        return self.order[min(self.cursor_row, len(self.order) - 1)]

    def set_runs(
        self, runs: list[RunInfo], marked: dict[str, str], alerts: dict[str, int] | None = None
    ) -> None:
        """Show `runs` in this order; `marked` maps run id to its compare colour, `alerts` to
        how many health alerts it has open."""
        selected = self.selected_id
        now = time.time()
        self.order = [r.id for r in runs]
        self.infos = {r.id: r for r in runs}
        self.marked = dict(marked)
        alerts = alerts or {}
        self.rows = [cells(r, r.id in marked, now, alerts.get(r.id, 0)) for r in runs]
        widths = {k: len(label) for k, label in COLUMNS}
        for row in self.rows:
            for k, v in row.items():
                if len(v) > widths[k]:
                    widths[k] = len(v)
        self.natural = {k: min(w, MAX_WIDTH.get(k, 40)) for k, w in widths.items()}
        self._fit()
        at = self.order.index(selected) if selected in self.infos else self.cursor_row
        self.move_cursor(row=max(0, min(at, len(self.order) - 1)))
        self.refresh()

    def _fit(self) -> None:
        """The columns that fit the list's width (all of them before it is laid out)."""
        self.widths = fit_columns(self.natural, self.scrollable_content_region.width)
        total = sum(self.widths.values()) + 2 * len(self.widths)
        self.virtual_size = Size(total, len(self.order) + 1)

    def on_resize(self) -> None:
        self._fit()
        self.refresh()

    def move_cursor(self, row: int, animate: bool = False) -> None:
        if not self.order:
            self.cursor_row = 0
            return
        self.cursor_row = max(0, min(row, len(self.order) - 1))
        self._scroll_to_cursor()

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh()
        self.post_message(self.Highlighted(self.selected_id))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def action_move(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta * max(1, self.size.height - 2))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_y) + event.y - 1)
            self.focus()

    # -- rendering -----------------------------------------------------------------------------
    def _cell_style(self, key: str, text: str, run_id: str) -> str:
        colour = self.marked.get(run_id)
        if key == "status":
            if ALERT in text:
                return "bold red"
            return STATUS_STYLE.get(text.split(" ")[0], "")  # "queued #2" styles as queued
        if key == "mark" and colour:
            return f"bold {colour}"
        if key == "name" and colour:
            return colour
        if key == "id":
            return "dim"
        return ""

    def _line(self, values: dict[str, str], run_id: str | None) -> Text:
        line = Text(no_wrap=True, overflow="crop")
        for key, width in self.widths.items():
            value = values[key]
            if len(value) > width:
                value = value[: width - 1] + "…"
            style = self._cell_style(key, values[key], run_id) if run_id else ""
            line.append(" " + value.ljust(width) + " ", style=style)
        return line

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if y == 0:
            head_style = base + self.get_component_rich_style("runtable--header")
            header = self._line(dict(COLUMNS), None)
            segments = list(header.render(self.app.console))
            return Strip(segments).crop_extend(scroll_x, scroll_x + width, head_style).simplify()
        index = scroll_y + y - 1
        if index >= len(self.order):
            return Strip.blank(width, base)
        line = self._line(self.rows[index], self.order[index])
        style: Style = base
        if index == self.cursor_row:
            style = base + self.get_component_rich_style("runtable--cursor")
        segments = [
            Segment(seg.text, style + seg.style if seg.style else style)
            for seg in line.render(self.app.console)
        ]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, style).simplify()
