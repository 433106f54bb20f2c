"""The main screen: the run list on top, the live detail of the selected run below."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from tuneterm.runs import view
from tuneterm.store import RunInfo
from tuneterm.tui.messages import HistoryChanged, RunsScanned, RunTextRead
from tuneterm.tui.panes import Need, Pane, PaneData, registered_panes
from tuneterm.tui.reading import RunText, read_text
from tuneterm.tui.rows import SORT_KEYS, matches, needs_config, parse_filter, sort_runs
from tuneterm.tui.screens import ChartKeys
from tuneterm.tui.screens.runactions import RunActions
from tuneterm.tui.widgets.alerts import AlertsBox
from tuneterm.tui.widgets.inputs import OrderedInput
from tuneterm.tui.widgets.runtable import RunTable


class MainScreen(ChartKeys, RunActions):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "mark",
            "Mark",
            id="run.mark",
            tooltip="Mark the selected run for compare (it keeps a colour while marked)",
        ),
        Binding(
            "c",
            "compare",
            "Compare",
            id="run.compare",
            tooltip="Compare the marked runs: overlaid curves, metrics, config diff",
        ),
        Binding(
            "Q",
            "queue",
            "Queue",
            id="queue.open",
            show=False,
            tooltip="Show the queue of runs waiting to start",
        ),
        Binding(
            "G",
            "sweep_group",
            "Sweep group",
            id="sweep.group",
            show=False,
            tooltip="Show the sweep the selected run belongs to, ranked by a metric",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="list.filter",
            key_display="/",
            # Priority: the app runs it before it routes the next key, so what is typed in
            # one burst after `/` reaches the box, not the run list's own keys.
            priority=True,
            tooltip="Filter the runs: words, status:x, tag:x, train.lr<0.01",
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="list.clear_filter",
            show=False,
            tooltip="Clear the filter and show every run",
        ),
        Binding(
            "S",
            "sort",
            "Sort by next column",
            id="list.sort",
            show=False,
            tooltip="Sort the list by the next column",
        ),
        Binding(
            "O",
            "sort_order",
            "Reverse sort",
            id="list.reverse",
            show=False,
            tooltip="Reverse the sort order",
        ),
        Binding(
            "z",
            "smoothing",
            "Loss smoothing",
            id="chart.smoothing",
            show=False,
            tooltip="Cycle the smoothing of the loss curves",
        ),
        Binding(
            "x",
            "x_axis",
            "Chart x axis",
            id="chart.x_axis",
            show=False,
            tooltip="Plot against step, epoch or time",
        ),
        Binding(
            "g",
            "log_y",
            "Log y axis",
            id="chart.log_y",
            show=False,
            tooltip="Toggle a logarithmic y axis for loss",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        # The panes registered when the screen is built, each with its number key. The keys
        # are bound per screen (not in BINDINGS) so that a pane registered later gets one too.
        self.panes: dict[str, Pane] = {cls.id: cls() for cls in registered_panes()}
        for pane in self.panes.values():
            binding = pane.binding()
            self._bindings.key_to_bindings.setdefault(binding.key, []).append(binding)
        self.runs: list[RunInfo] = []
        self.configs: dict[str, dict[str, Any]] = {}
        self.filter_text = ""
        self.sort_key = "created"
        self.descending = True
        self.texts: dict[str, RunText] = {}
        self._drawn: dict[str, tuple[object, ...] | None] = {}
        self._scanned = False

    def compose(self) -> ComposeResult:
        yield Static("", id="titlebar")
        yield OrderedInput(
            placeholder="filter: words, status:running, tag:x, train.lr<0.01", id="filter"
        )
        yield RunTable(id="runs")
        yield Static("", id="detail-head")
        yield AlertsBox(id="detail-alerts")
        with TabbedContent(id="detail"):
            for pane in self.panes.values():
                with TabPane(f"{pane.key} {pane.label}", id=f"pane-{pane.id}"):
                    yield from pane.compose()
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p still works; ? says so

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one(RunTable).focus()
        self._title()
        self.scan()
        self.set_interval(self.host.scan_interval, self.scan)
        self.set_interval(1.0, self._tick)

    # -- the run list --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan(self) -> None:
        started = time.perf_counter()
        with self.host.scan_lock:
            runs = self.host.lister.scan()
            configs = None
            if needs_config(parse_filter(self.filter_text)):
                configs = {r.id: self.host.configs.get(r.id) for r in runs}
            alerts = {r.id: r.alerts for r in self.host.health.check() if r.alerts}
        self.post_message(RunsScanned(runs, configs, time.perf_counter() - started, alerts))

    @on(RunsScanned)
    def runs_scanned(self, message: RunsScanned) -> None:
        self.runs = message.runs
        self.host.take_alerts(
            message.alerts,
            {r.id: r.name or r.id for r in message.runs},
            {r.id: r.meta.resumes for r in message.runs if r.meta},
        )
        if message.configs is not None:
            self.configs = message.configs
        self._scanned = True
        self.show_runs()
        if self.host.first_paint is None:
            self.host.first_paint = time.perf_counter() - self.host.started

    def visible_runs(self) -> list[RunInfo]:
        terms = parse_filter(self.filter_text)
        runs = self.runs
        if terms:
            runs = [r for r in runs if matches(r, terms, self.configs.get(r.id))]
        return sort_runs(runs, self.sort_key, self.descending)

    def show_runs(self) -> None:
        table = self.query_one(RunTable)
        known = {r.id for r in self.runs}
        for gone in [m for m in self.host.marked if m not in known]:
            self.host.forget_run(gone)
        table.set_runs(self.visible_runs(), self.host.marked, self.host.alert_counts())
        pending = self.host.pending_select
        if pending and pending in table.order:
            table.move_cursor(row=table.order.index(pending), animate=False)
            self.host.pending_select = None
        self._title()
        self._select(table.selected_id)

    def on_screen_resume(self) -> None:
        self.scan()
        self.query_one(RunTable).set_runs(
            self.visible_runs(), self.host.marked, self.host.alert_counts()
        )

    def _title(self) -> None:
        shown = len(self.query_one(RunTable).order)
        total = len(self.runs)
        active = sum(1 for r in self.runs if r.alive)
        text = Text()
        text.append(" tuneterm ", style="bold reverse")
        # What changes comes first; the runs folder last, so a narrow terminal cuts only it.
        if not self._scanned:
            text.append("  reading runs…")
        else:
            text.append(f"  {total} runs, {active} active")
        if self.filter_text and self.query_one("#filter").display:  # the box shows the words
            text.append(f"  {shown} shown", style="bold")
        elif self.filter_text:
            words = self.filter_text if len(self.filter_text) <= 20 else self.filter_text[:19] + "…"
            text.append(f"  filter: {words} ({shown} shown)", style="bold")
        arrow = "↓" if self.descending else "↑"
        text.append(f"  sort: {self.sort_key} {arrow}", style="dim")
        if self.host.marked:
            text.append(f"  {len(self.host.marked)} marked", style="bold")
        text.append(f"  {self.host.store.root}", style="dim")
        self.query_one("#titlebar", Static).update(text)

    def _tick(self) -> None:
        """Elapsed and ETA move even when nothing is written."""
        if self.runs and any(r.alive for r in self.runs):
            self.query_one(RunTable).set_runs(
                self.visible_runs(), self.host.marked, self.host.alert_counts()
            )

    @on(RunTable.Highlighted)
    def row_highlighted(self, event: RunTable.Highlighted) -> None:
        self._select(event.run_id)

    def _select(self, run_id: str | None) -> None:
        if run_id == self.host.selected and run_id is not None:
            self.refresh_detail()
            return
        self.host.selected = run_id
        self._drawn.clear()
        if run_id and any(Need.TEXT in pane.needs for pane in self.panes.values()):
            self.read_run_text(run_id)
        self.refresh_detail()

    @work(thread=True, exclusive=True, group="text", exit_on_error=False)
    def read_run_text(self, run_id: str) -> None:
        self.post_message(RunTextRead(read_text(self.host.store, run_id)))

    @on(RunTextRead)
    def run_text_read(self, message: RunTextRead) -> None:
        self.texts[message.text.run_id] = message.text
        if message.text.run_id == self.host.selected:
            self.refresh_detail()

    def rescan(self) -> None:
        self.scan()

    @property
    def selected_info(self) -> RunInfo | None:
        table = self.query_one(RunTable)
        return table.infos.get(self.host.selected or "")

    # -- the detail panes ----------------------------------------------------------------------
    @on(HistoryChanged)
    def history_changed(self, message: HistoryChanged) -> None:
        if message.gpu or self.host.selected in message.run_ids:
            self.refresh_detail()

    @on(TabbedContent.TabActivated)
    def tab_activated(self) -> None:
        self.refresh_detail()

    def refresh_detail(self) -> None:
        info = self.selected_info
        self._show_head(info)
        active = self.query_one(TabbedContent).active  # "" before the tabs are mounted
        pane_id = active.removeprefix("pane-") if active else next(iter(self.panes), "")
        pane = self.panes.get(pane_id)
        if pane is None:
            return
        data = self._pane_data(info)
        fresh = data.freshness(pane.needs)
        if fresh is not None and self._drawn.get(pane_id) == fresh:
            return  # nothing it reads has changed
        self._drawn[pane_id] = fresh
        pane.draw(self.query_one(f"#pane-{pane_id}", TabPane), data)

    def _show_head(self, info: RunInfo | None) -> None:
        head = Text()
        if info is None:
            head.append(" no run selected — press n to start one", style="dim")
        else:
            head.append(f" {info.name or info.id} ", style="bold")
            head.append(info.status, style="bold")
            if info.reason:
                head.append(f" ({info.reason})", style="dim")
            if info.label.tags:
                head.append("  #" + " #".join(info.label.tags), style="cyan")
        head.append(f"   {self.host.chart_status()}", style="dim")
        notes = " ".join(info.label.notes.split()) if info else ""
        if notes:  # on a line of its own, cut to it (the `o` dialog shows them whole)
            head.append("\n notes: ", style="bold")
            head.append(notes, style="italic")
        self.query_one("#detail-head", Static).update(head)
        self.query_one(AlertsBox).show(self.host.alerts.get(info.id, []) if info else [])

    def _pane_data(self, info: RunInfo | None) -> PaneData:
        host = self.host
        return PaneData(
            info=info,
            history=host.histories.get(info.id) if info else None,
            text=self.texts.get(info.id) if info else None,
            chart=host,
            chart_status=host.chart_status(),
            gpus=host.gpus,
            nvml_problem=host.nvml_problem,
        )

    # -- keys: list ----------------------------------------------------------------------------
    def action_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = f"pane-{pane}"

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if isinstance(self.focused, Input):  # a priority key: inside a box it is a "/" typed
            self.focused.insert_text_at_cursor("/")
            return
        box.display = True
        self.set_focus(box)  # now, not after the keys already queued (as `focus()` would)

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        if needs_config(parse_filter(self.filter_text)):
            self.scan()  # reads the configs in the worker
        self.show_runs()

    @on(Input.Submitted, "#filter")
    def filter_submitted(self) -> None:
        self.query_one(RunTable).focus()
        if not self.filter_text:
            self.query_one("#filter").display = False

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.value:
            box.value = ""
        box.display = False
        self.query_one(RunTable).focus()

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.descending = self.sort_key in ("created", "progress", "best", "elapsed")
        self.show_runs()

    def action_sort_order(self) -> None:
        self.descending = not self.descending
        self.show_runs()

    def redraw_charts(self) -> None:
        self.refresh_detail()

    def action_mark(self) -> None:
        run_id = self.host.selected
        if run_id is None:
            return
        self.host.toggle_mark(run_id)
        table = self.query_one(RunTable)
        table.set_runs(self.visible_runs(), self.host.marked, self.host.alert_counts())
        if table.cursor_row < len(table.order) - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self._title()

    def action_compare(self) -> None:
        from tuneterm.tui.screens.compare import CompareScreen

        ids = list(self.host.marked)
        if len(ids) < 2 and self.host.selected and self.host.selected not in ids:
            ids.append(self.host.selected)
        infos = {r.id: r for r in self.runs}
        ids = view.with_parents(ids, infos)  # a soup beside its parents
        if len(ids) < 2:
            self.notify("Mark two or more runs with space, then press c.", severity="warning")
            return
        self.app.push_screen(CompareScreen([infos[i] for i in ids if i in infos]))

    def action_queue(self) -> None:
        from tuneterm.tui.screens.queue import QueueScreen

        self.app.push_screen(QueueScreen())

    def action_sweep_group(self) -> None:
        from tuneterm.runs.sweep import group_of
        from tuneterm.tui.screens.group import GroupScreen

        info = self.selected_info
        group = group_of(info) if info else ""
        if not group:
            self.notify("The selected run is not part of a sweep (no sweep:<group> tag).",
                        severity="warning")  # fmt: skip
            return
        self.app.push_screen(GroupScreen(group))
