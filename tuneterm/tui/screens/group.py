"""A sweep group side by side: every run of the group in one table, sorted by the chosen
metric, with the swept keys as columns (tuneterm.runs.sweep.group_table, as `tuneterm
sweep-best` prints)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tuneterm.runs import sweep
from tuneterm.store import RunInfo
from tuneterm.tasks.spec import Metric
from tuneterm.tui.metrics import classes_of, spec_of
from tuneterm.tui.protocols import Hosted
from tuneterm.tui.rows import STATUS_STYLE, number
from tuneterm.tui.screens import back_binding


@dataclass
class GroupRead(Message):
    table: sweep.GroupTable | None
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GroupRead)


@dataclass
class SoupMade(Message):
    """The sweep's soup was started (`run_id`), or could not be (`error`)."""

    run_id: str = ""
    error: str = ""


def group_metrics(infos: list[RunInfo]) -> list[Metric]:
    """Every metric the group's runs report (their metric specs), each once, in spec order."""
    out: dict[str, Metric] = {}
    for info in infos:
        spec, classes = spec_of(info), classes_of(info)
        for m in (*spec.val, *spec.test):
            if m.shown_for(classes):
                out.setdefault(m.name, m)
    return list(out.values())


class GroupScreen(Hosted, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("escape,G", "group"),
        Binding(
            "m",
            "next_metric",
            "Sort metric",
            id="group.metric",
            tooltip="Rank the sweep's runs by the next metric",
        ),
        Binding(
            "s",
            "soup",
            "Soup",
            id="group.soup",
            tooltip="Average the sweep's completed runs into a new run (a greedy model soup)",
        ),
        Binding(
            "enter",
            "open_run",
            "Select run",
            id="group.select",
            tooltip="Back to the run list with the highlighted run selected",
        ),
    ]

    def __init__(self, group: str, metric: str = "") -> None:
        super().__init__()
        self.group, self.metric = group, metric
        self.table: sweep.GroupTable | None = None
        self._shape: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("", id="group-head")
        yield DataTable(id="group-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#group-table", DataTable).focus()
        self.read()
        self.set_interval(2.0, self.read)

    @work(thread=True, exclusive=True, group="sweep-group", exit_on_error=False)
    def read(self) -> None:
        try:
            table = sweep.group_table(self.host.store, self.group, self.metric)
        except Exception as exc:  # a group whose runs were deleted: say so, stay open
            self.post_message(GroupRead(None, str(exc)))
            return
        self.post_message(GroupRead(table))

    @on(GroupRead)
    def group_read(self, message: GroupRead) -> None:
        head = Text(f" sweep {self.group}  ", style="bold")
        if message.table is None:
            head.append(message.error, style="red")
            self.query_one("#group-head", Static).update(head)
            return
        self.table = t = message.table
        self.metric = t.metric
        arrow = "↑ higher is better" if t.higher else "↓ lower is better"
        head.append(f"{len(t.rows)} runs, sorted by {t.metric} ({arrow}; m: next metric)")
        if t.best is not None:
            head.append(f"   best {t.best.info.name or t.best.info.id} {number(t.best.value)}",
                        style="green")  # fmt: skip
        self.query_one("#group-head", Static).update(head)
        widget = self.query_one("#group-table", DataTable)
        shape = ("#", "run", "status", *t.keys, t.metric)
        if shape != self._shape:
            widget.clear(columns=True)
            for label in shape:
                widget.add_column(label, key=label)
            self._shape = shape
        else:
            widget.clear()
        for rank, row in enumerate(t.rows, start=1):
            style = "bold green" if row is t.best else ""
            widget.add_row(
                str(rank),
                Text(row.info.name or row.info.id, style=style),
                Text(row.info.status, style=STATUS_STYLE.get(row.info.status, "")),
                *[json.dumps(row.params.get(k)) for k in t.keys],
                number(row.value),
                key=row.info.id,
            )

    def action_close(self) -> None:
        self.dismiss(None)

    def action_next_metric(self) -> None:
        """The next metric the group's runs report (top-5 only for runs with more than five
        classes, as their panes show it)."""
        if self.table is None:
            return
        shown = [m.name for m in group_metrics([row.info for row in self.table.rows])]
        metrics = [m for m in shown if m in self.table.metrics] or list(self.table.metrics)
        if not metrics:
            return
        at = metrics.index(self.metric) if self.metric in metrics else -1
        self.metric = metrics[(at + 1) % len(metrics)]
        self.read()

    def action_soup(self) -> None:
        self.notify(f"Making a greedy soup of sweep {self.group}...", timeout=2)
        self.make_soup()

    @work(thread=True, exclusive=True, group="sweep-soup", exit_on_error=False)
    def make_soup(self) -> None:
        """`tuneterm soup --sweep GROUP`: checked, then a detached run like any other."""
        from tuneterm.runs import soup

        try:
            info = soup.make(self.host.store, soup.SoupRequest(group=self.group))
        except Exception as exc:  # shown, never fatal: incompatible runs say which and why
            self.post_message(SoupMade(error=str(exc) or type(exc).__name__))
            return
        self.post_message(SoupMade(run_id=info.id))

    @on(SoupMade)
    def soup_made(self, message: SoupMade) -> None:
        if message.error:
            self.notify(message.error, title="no soup", severity="error")
            return
        self.notify(f"soup {message.run_id} started; compare it with its parents: c", timeout=4)
        self.host.pending_select = message.run_id

    @on(DataTable.RowSelected, "#group-table")
    def row_selected(self) -> None:  # enter on the table (the table's own binding)
        self.action_open_run()

    def action_open_run(self) -> None:
        """Back to the run list with the highlighted run selected."""
        widget = self.query_one("#group-table", DataTable)
        if self.table is not None and widget.cursor_row < len(self.table.rows):
            self.host.pending_select = self.table.rows[widget.cursor_row].info.id
        self.dismiss(None)
