"""The main screen: the run list on top, the live detail of the selected run below."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Input, Log, Static, TabbedContent, TabPane

from tuneterm.config import ConfigError, run_config, template, to_toml
from tuneterm.store import RunInfo
from tuneterm.tui.history import X_LABELS, RunHistory
from tuneterm.tui.messages import HistoryChanged, RunsScanned, RunTextRead
from tuneterm.tui.metrics import colour, plotted, throughput_unit
from tuneterm.tui.reading import RunText, read_text
from tuneterm.tui.rows import SORT_KEYS, matches, needs_config, parse_filter, sort_runs
from tuneterm.tui.screens.runactions import RunActions
from tuneterm.tui.widgets.alerts import AlertsBox
from tuneterm.tui.widgets.curve import Chart, CurvePlot, Line
from tuneterm.tui.widgets.panes import speed_summary, system_view, test_view
from tuneterm.tui.widgets.runtable import RunTable

if TYPE_CHECKING:
    from tuneterm.tui.app import TuneTermApp

PANES: tuple[tuple[str, str], ...] = (
    ("loss", "Loss"),
    ("acc", "Accuracy"),
    ("system", "System"),
    ("speed", "Speed"),
    ("log", "Log"),
    ("config", "Config"),
    ("test", "Test"),
)
LOG_LEVEL_STYLE = {"error": "red", "trace": "red", "warning": "yellow", "status": "cyan"}


class MainScreen(RunActions):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_run", "New", id="run.new"),
        Binding("e", "clone_run", "Clone", id="run.clone"),
        Binding("s", "stop", "Stop", id="run.stop"),
        Binding("K", "kill", "Kill", id="run.kill", show=False),  # k moves up, as in k9s
        Binding("r", "resume", "Resume", id="run.resume"),
        Binding("d,delete", "delete", "Delete", id="run.delete", show=False),
        Binding("R", "rename", "Rename", id="run.rename", show=False),
        Binding("t", "tags", "Tags", id="run.tags", show=False),
        Binding("o", "notes", "Notes", id="run.notes", show=False),
        Binding("space", "mark", "Mark", id="run.mark"),
        Binding("c", "compare", "Compare", id="run.compare"),
        Binding("Q", "queue", "Queue", id="queue.open", show=False),
        Binding("G", "sweep_group", "Sweep group", id="sweep.group", show=False),
        Binding("slash", "filter", "Filter", id="list.filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter", id="list.clear_filter", show=False),
        Binding("S", "sort", "Sort by next column", id="list.sort", show=False),
        Binding("O", "sort_order", "Reverse sort", id="list.reverse", show=False),
        Binding("z", "smoothing", "Loss smoothing", id="chart.smoothing", show=False),
        Binding("x", "x_axis", "Chart x axis", id="chart.x_axis", show=False),
        Binding("g", "log_y", "Log y axis", id="chart.log_y", show=False),
        *[
            Binding(str(i), f"pane('{pane}')", f"Show {label}", id=f"pane.{pane}", show=False)
            for i, (pane, label) in enumerate(PANES, start=1)
        ],
    ]

    app: TuneTermApp

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunInfo] = []
        self.configs: dict[str, dict[str, Any]] = {}
        self.filter_text = ""
        self.sort_key = "created"
        self.descending = True
        self.texts: dict[str, RunText] = {}
        self._log_shown: tuple[str, int] = ("", 0)
        self._drawn: dict[str, tuple[str, int, str]] = {}
        self._scanned = False

    def compose(self) -> ComposeResult:
        yield Static("", id="titlebar")
        yield Input(placeholder="filter: words, status:running, tag:x, train.lr<0.01", id="filter")
        yield RunTable(id="runs")
        yield Static("", id="detail-head")
        yield AlertsBox(id="detail-alerts")
        with TabbedContent(id="detail"):
            for i, (pane, label) in enumerate(PANES, start=1):
                with TabPane(f"{i} {label}", id=f"pane-{pane}"):
                    yield from self._pane(pane)
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p still works; ? says so

    def _pane(self, pane: str) -> ComposeResult:
        if pane in ("loss", "acc"):
            yield CurvePlot(id=f"plot-{pane}")
        elif pane == "speed":
            yield Static("", id="speed-summary")
            with Horizontal():
                yield CurvePlot(id="plot-speed")
                yield CurvePlot(id="plot-wait")
        elif pane == "log":
            yield Log(id="log-view", max_lines=2000)
        else:
            with VerticalScroll():
                yield Static("", id=f"{pane}-view")

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one(RunTable).focus()
        self._title()
        self.scan()
        self.set_interval(self.app.scan_interval, self.scan)
        self.set_interval(1.0, self._tick)

    # -- the run list --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan(self) -> None:
        started = time.perf_counter()
        with self.app.scan_lock:
            runs = self.app.lister.scan()
            configs = None
            if needs_config(parse_filter(self.filter_text)):
                configs = {r.id: self.app.configs.get(r.id) for r in runs}
            alerts = {r.id: r.alerts for r in self.app.health.check() if r.alerts}
        self.post_message(RunsScanned(runs, configs, time.perf_counter() - started, alerts))

    @on(RunsScanned)
    def runs_scanned(self, message: RunsScanned) -> None:
        self.runs = message.runs
        self.app.take_alerts(message.alerts, {r.id: r.name or r.id for r in message.runs})
        if message.configs is not None:
            self.configs = message.configs
        self._scanned = True
        self.show_runs()
        if self.app.first_paint is None:
            self.app.first_paint = time.perf_counter() - self.app.started

    def visible_runs(self) -> list[RunInfo]:
        terms = parse_filter(self.filter_text)
        runs = self.runs
        if terms:
            runs = [r for r in runs if matches(r, terms, self.configs.get(r.id))]
        return sort_runs(runs, self.sort_key, self.descending)

    def show_runs(self) -> None:
        table = self.query_one(RunTable)
        known = {r.id for r in self.runs}
        for gone in [m for m in self.app.marked if m not in known]:
            self.app.forget_run(gone)
        table.set_runs(self.visible_runs(), self.app.marked, self.app.alert_counts())
        pending = self.app.pending_select
        if pending and pending in table.order:
            table.move_cursor(row=table.order.index(pending), animate=False)
            self.app.pending_select = None
        self._title()
        self._select(table.selected_id)

    def on_screen_resume(self) -> None:
        self.scan()
        self.query_one(RunTable).set_runs(
            self.visible_runs(), self.app.marked, self.app.alert_counts()
        )

    def _title(self) -> None:
        shown = len(self.query_one(RunTable).order)
        total = len(self.runs)
        active = sum(1 for r in self.runs if r.alive)
        text = Text()
        text.append(" tuneterm ", style="bold reverse")
        text.append(f"  {self.app.store.root}  ", style="dim")
        if not self._scanned:
            text.append("reading runs…")
        else:
            text.append(f"{total} runs, {active} active")
        if self.filter_text:
            text.append(f"  filter: {self.filter_text} ({shown} shown)", style="bold")
        arrow = "↓" if self.descending else "↑"
        text.append(f"  sort: {self.sort_key} {arrow}", style="dim")
        if self.app.marked:
            text.append(f"  {len(self.app.marked)} marked", style="bold")
        self.query_one("#titlebar", Static).update(text)

    def _tick(self) -> None:
        """Elapsed and ETA move even when nothing is written."""
        if self.runs and any(r.alive for r in self.runs):
            self.query_one(RunTable).set_runs(
                self.visible_runs(), self.app.marked, self.app.alert_counts()
            )

    @on(RunTable.Highlighted)
    def row_highlighted(self, event: RunTable.Highlighted) -> None:
        self._select(event.run_id)

    def _select(self, run_id: str | None) -> None:
        if run_id == self.app.selected and run_id is not None:
            self.refresh_detail()
            return
        self.app.selected = run_id
        self._drawn.clear()
        if run_id:
            self.read_run_text(run_id)
        self.refresh_detail()

    @work(thread=True, exclusive=True, group="text", exit_on_error=False)
    def read_run_text(self, run_id: str) -> None:
        self.post_message(RunTextRead(read_text(self.app.store, run_id)))

    @on(RunTextRead)
    def run_text_read(self, message: RunTextRead) -> None:
        self.texts[message.text.run_id] = message.text
        if message.text.run_id == self.app.selected:
            self._drawn.pop("config", None)
            self._drawn.pop("log", None)
            self.refresh_detail()

    def rescan(self) -> None:
        self.scan()

    @property
    def selected_info(self) -> RunInfo | None:
        table = self.query_one(RunTable)
        return table.infos.get(self.app.selected or "")

    # -- the detail panes ----------------------------------------------------------------------
    @on(HistoryChanged)
    def history_changed(self, message: HistoryChanged) -> None:
        if message.gpu or self.app.selected in message.run_ids:
            self.refresh_detail()

    @on(TabbedContent.TabActivated)
    def tab_activated(self) -> None:
        self.refresh_detail()

    def refresh_detail(self) -> None:
        info = self.selected_info
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
        head.append(f"   {self.app.chart_status()}", style="dim")
        self.query_one("#detail-head", Static).update(head)
        self.query_one(AlertsBox).show(self.app.alerts.get(info.id, []) if info else [])
        pane = (self.query_one(TabbedContent).active or "pane-loss").removeprefix("pane-")
        run_id = self.app.selected or ""
        history = self.app.histories.get(run_id)
        key: tuple[str, int, str] = (run_id, history.version if history else -1, "")
        if pane in ("loss", "acc", "speed"):
            key = (*key[:2], self.app.chart_status())
        elif pane == "config":
            key = (run_id, int(run_id in self.texts), "")
        elif pane == "test":
            key = (*key[:2], info.status if info else "")
        if pane not in ("system", "log") and self._drawn.get(pane) == key:
            return  # nothing new to draw
        self._drawn[pane] = key
        getattr(self, f"_draw_{pane}")(info, history)

    def _steps_per_epoch(self, info: RunInfo | None) -> float:
        m = info.meta if info else None
        return m.total_steps / m.epochs if m and m.epochs and m.total_steps else 0.0

    def _draw_loss(self, info: RunInfo | None, history: RunHistory | None) -> None:
        app = self.app
        chart = Chart(xlabel=X_LABELS[app.x_axis], log_y=app.log_y, empty=self._empty(info))
        if history is not None:
            spe = self._steps_per_epoch(info)
            chart.lines = [
                Line(
                    history.x_of(history.train, app.x_axis, spe),
                    history.train.np("loss"),
                    "train loss",
                    "cyan",
                    app.smoothing_weight,
                ),
            ]
            x = history.x_of(history.val, app.x_axis, spe)
            chart.lines += [
                Line(x, history.val.np(m.name), f"val {m.label}", colour("loss", i), points=True)
                for i, m in enumerate(plotted(info, "loss"))
            ]
        self.query_one("#plot-loss", CurvePlot).show(chart)

    def _draw_acc(self, info: RunInfo | None, history: RunHistory | None) -> None:
        app = self.app
        chart = Chart(xlabel=X_LABELS[app.x_axis], empty=self._empty(info, "no val epoch yet"))
        if history is not None:
            x = history.x_of(history.val, app.x_axis, self._steps_per_epoch(info))
            chart.lines = [
                Line(x, history.val.np(m.name), f"val {m.label}", colour("acc", i), points=True)
                for i, m in enumerate(plotted(info, "acc"))
            ]
        self.query_one("#plot-acc", CurvePlot).show(chart)

    def _draw_speed(self, info: RunInfo | None, history: RunHistory | None) -> None:
        app = self.app
        unit = throughput_unit(info)
        self.query_one("#speed-summary", Static).update(speed_summary(history, unit))
        speed = Chart(title=unit, xlabel=X_LABELS[app.x_axis], empty=self._empty(info))
        wait = Chart(title="data wait %", xlabel=X_LABELS[app.x_axis], empty="")
        if history is not None:
            x = history.x_of(history.train, app.x_axis, self._steps_per_epoch(info))
            speed.lines = [Line(x, history.train.np("img_s"), unit, "cyan")]
            wait.lines = [Line(x, history.train.np("data_wait") * 100, "data wait %", "yellow")]
        self.query_one("#plot-speed", CurvePlot).show(speed)
        self.query_one("#plot-wait", CurvePlot).show(wait)

    def _draw_system(self, info: RunInfo | None, history: RunHistory | None) -> None:
        view = system_view(info, history, self.app.gpus, self.app.nvml_problem)
        self.query_one("#system-view", Static).update(view)

    def _draw_test(self, info: RunInfo | None, history: RunHistory | None) -> None:
        self.query_one("#test-view", Static).update(test_view(info, history))

    def _draw_config(self, info: RunInfo | None, history: RunHistory | None) -> None:
        text = self.texts.get(info.id) if info else None
        view = self.query_one("#config-view", Static)
        if text is None:
            view.update(Text("reading…" if info else "", style="dim"))
            return
        config = Syntax(text.config, "toml", theme="ansi_dark", background_color="default")
        pipeline = Text()
        pipeline.append("# training pipeline (resolved)\n", style="bold")
        for line in text.pipeline.splitlines():
            pipeline.append(f"#   {line}\n", style="dim")
        pipeline.append("\n")
        view.update(Group(pipeline, config))

    def _draw_log(self, info: RunInfo | None, history: RunHistory | None) -> None:
        log = self.query_one("#log-view", Log)
        run_id = info.id if info else ""
        shown_id, shown = self._log_shown
        total = history.log_total if history else 0
        if shown_id != run_id or total < shown:
            log.clear()
            shown = 0
            text = self.texts.get(run_id)
            if (history is None or not history.logs) and text and text.log_tail:
                log.write_line("── engine.log (tail) ──")
                log.write_lines(text.log_tail.splitlines())
        if history is not None and total > shown:
            new = list(history.logs)[-min(total - shown, len(history.logs)) :]
            log.write_lines(
                f"{time.strftime('%H:%M:%S', time.localtime(line.t))} {line.level:>7} {line.msg}"
                for line in new
            )
        self._log_shown = (run_id, total)

    def _empty(self, info: RunInfo | None, what: str = "no training steps yet") -> str:
        if info is None:
            return "no run selected"
        if info.status in ("failed", "crashed") and info.reason:
            return f"{what}: {info.reason}"
        return what

    # -- keys: list ----------------------------------------------------------------------------
    def action_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = f"pane-{pane}"

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

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

    def action_smoothing(self) -> None:
        self.app.cycle_smoothing()
        self.refresh_detail()

    def action_x_axis(self) -> None:
        self.app.cycle_x_axis()
        self.refresh_detail()

    def action_log_y(self) -> None:
        self.app.log_y = not self.app.log_y
        self.refresh_detail()

    def action_mark(self) -> None:
        run_id = self.app.selected
        if run_id is None:
            return
        self.app.toggle_mark(run_id)
        table = self.query_one(RunTable)
        table.set_runs(self.visible_runs(), self.app.marked, self.app.alert_counts())
        if table.cursor_row < len(table.order) - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self._title()

    def action_compare(self) -> None:
        from tuneterm.tui.screens.compare import CompareScreen

        ids = list(self.app.marked)
        if len(ids) < 2 and self.app.selected and self.app.selected not in ids:
            ids.append(self.app.selected)
        if len(ids) < 2:
            self.notify("Mark two or more runs with space, then press c.", severity="warning")
            return
        infos = {r.id: r for r in self.runs}
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

    # -- keys: runs ----------------------------------------------------------------------------
    def action_new_run(self) -> None:
        from tuneterm.tui.screens.editor import EditorScreen

        if self.app.draft:
            text, title = self.app.draft
            self.app.push_screen(EditorScreen(text, title + " (draft)"))
        else:
            self.app.push_screen(EditorScreen(template(), "New run from the template"))

    def action_clone_run(self) -> None:
        info = self.selected_info
        if info is None:
            self.action_new_run()
            return
        self.clone(info.id)

    @work(thread=True, exclusive=True, group="clone", exit_on_error=False)
    def clone(self, run_id: str) -> None:
        try:
            cfg = run_config(self.app.store, run_id)
            cfg.run.name = ""
            text = to_toml(cfg)
        except (ConfigError, OSError) as exc:
            self.app.call_from_thread(
                self.notify, f"cannot clone {run_id}: {exc}", severity="error"
            )
            return
        self.app.call_from_thread(self._open_clone, text, run_id)

    def _open_clone(self, text: str, run_id: str) -> None:
        from tuneterm.tui.screens.editor import EditorScreen

        self.app.push_screen(EditorScreen(text, f"Clone of {run_id}"))
