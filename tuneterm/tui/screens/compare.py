"""Compare marked runs: overlaid curves with a stable colour per run, a metrics table with best
and last values, and a config diff of only the keys that differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from tuneterm.config import ConfigError, flatten, run_config
from tuneterm.store import RunInfo
from tuneterm.tasks import Metric
from tuneterm.tui.history import X_LABELS, RunHistory
from tuneterm.tui.messages import HistoryChanged
from tuneterm.tui.metrics import best_last, classes_of, plotted, spec_of, test_value
from tuneterm.tui.rows import STATUS_STYLE, number
from tuneterm.tui.widgets.curve import Chart, CurvePlot, Line

if TYPE_CHECKING:
    from tuneterm.tui.app import TuneTermApp

_MISSING = "—"


@dataclass
class CompareRead(Message):
    infos: list[RunInfo]
    configs: dict[str, dict[str, Any]] | None


def config_diff(configs: dict[str, dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """(key, value per run) for the keys whose values are not all equal."""
    ids = list(configs)
    keys = sorted({k for c in configs.values() for k in c})
    out = []
    for key in keys:
        values = [configs[i].get(key, _MISSING) for i in ids]
        if any(v != values[0] for v in values[1:]):
            out.append((key, values))
    return out


@dataclass(frozen=True)
class Column:
    """A metrics table column: a val metric's best / last, or a final test figure."""

    metric: Metric
    test: bool

    @property
    def label(self) -> str:
        return f"{'test' if self.test else 'val'} {self.metric.label}"


def metric_columns(infos: list[RunInfo]) -> list[Column]:
    """What the runs report, each metric once in the order first met: val metrics drawn in a
    pane (best / last, each in its own direction), then test figures of the accuracy pane."""
    val: dict[str, Column] = {}
    test: dict[str, Column] = {}
    for info in infos:
        spec, classes = spec_of(info), classes_of(info)
        for m in spec.val:
            if m.pane and m.shown_for(classes):
                val.setdefault(m.name, Column(m, test=False))
        for m in spec.test:
            if m.pane == "acc" and m.shown_for(classes):
                test.setdefault(m.name, Column(m, test=True))
    ordered = sorted(val.values(), key=lambda c: c.metric.pane != "acc")  # accuracy, then loss
    return [*ordered, *test.values()]


def _best_at_meta(info: RunInfo, metric: Metric) -> float:
    """The best value meta.json holds (for a run whose events are not read yet)."""
    best = info.meta.best if info.meta else {}
    value = best.get(metric.name, best.get("value") if best.get("metric") == metric.name else None)
    return math.nan if value is None else float(value)


def _cell(info: RunInfo, h: RunHistory, col: Column) -> str:
    m = col.metric
    spec, classes = spec_of(info), classes_of(info)
    if not any(x.name == m.name and x.shown_for(classes) for x in (*spec.val, *spec.test)):
        return ""  # a metric of another kind of run, or top-5 of a run with 5 classes or fewer
    if col.test:
        final = info.meta.final if info.meta else {}
        value = test_value(m, h.test, final) if h.test or final else None
        return m.format(value) if value is not None else ""
    best, last = best_last(h.val.np(m.name), m)
    if math.isnan(best):
        best = _best_at_meta(info, m)
    return f"{m.format(best)} / {m.format(last)}"


def table_header(columns: list[Column]) -> list[str]:
    """The metrics table's header, cell for cell as `metric_rows` fills it."""
    vals = [c.label for c in columns if not c.test]
    tests = [c.label for c in columns if c.test]
    return ["run", "status", "epoch", *vals, "loss", *tests]


def metric_rows(
    infos: list[RunInfo], histories: dict[str, RunHistory], columns: list[Column] | None = None
) -> list[list[str]]:
    """One row per run: name, status, epoch, then a cell per column (`metric_columns` of the
    runs unless given), train loss before the test figures."""
    columns = metric_columns(infos) if columns is None else columns
    n_val = sum(1 for c in columns if not c.test)
    rows = []
    for info in infos:
        h = histories.get(info.id) or RunHistory()
        loss = h.train.np("loss")
        meta = info.meta
        cells = [_cell(info, h, c) for c in columns]
        rows.append(
            [
                info.name or info.id,
                info.status,
                f"{meta.epoch}/{meta.epochs}" if meta and meta.epochs else "",
                *cells[:n_val],
                number(float(loss[-1])) if len(loss) else "",
                *cells[n_val:],
            ]
        )
    return rows


def chart_title(infos: list[RunInfo]) -> str:
    """The accuracy chart's title: each run's main val metric, once."""
    labels = dict.fromkeys(m[0].label for i in infos if (m := plotted(i, "acc")))
    return "val " + " / ".join(labels) if labels else "val"


class CompareScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,c", "close", "Back", id="compare.close"),
        Binding("z", "smoothing", "Smoothing", id="chart.smoothing"),
        Binding("x", "x_axis", "X axis", id="chart.x_axis"),
        Binding("g", "log_y", "Log y", id="chart.log_y"),
        Binding("1", "tab('metrics')", "Metrics", id="compare.metrics", show=False),
        Binding("2", "tab('diff')", "Config diff", id="compare.diff", show=False),
    ]

    app: TuneTermApp

    def __init__(self, infos: list[RunInfo]) -> None:
        super().__init__()
        self.infos = infos
        self.ids = [i.id for i in infos]
        self.configs: dict[str, dict[str, Any]] = {}
        self.columns: list[Column] = metric_columns(infos)

    def compose(self) -> ComposeResult:
        yield Static("", id="legend")
        with Horizontal(id="cmp-charts"):
            yield CurvePlot(id="cmp-loss")
            yield CurvePlot(id="cmp-acc")
        with TabbedContent(id="cmp-tabs"):
            with TabPane("1 Metrics (best / last)", id="metrics"):
                yield DataTable(id="cmp-metrics", cursor_type="row", zebra_stripes=True)
            with TabPane("2 Config diff", id="diff"):
                yield DataTable(id="cmp-diff", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.compared = list(self.ids)
        for run_id in self.ids:
            if run_id not in self.app.marked:
                self.app.toggle_mark(run_id)  # a colour of its own, kept while marked
        self._add_columns()
        self.read(with_configs=True)
        self.set_interval(2.0, self.read)
        self.redraw()

    def _add_columns(self) -> None:
        metrics = self.query_one("#cmp-metrics", DataTable)
        metrics.clear(columns=True)
        for label in table_header(self.columns):
            metrics.add_column(label)

    def on_unmount(self) -> None:
        self.app.compared = []

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def read(self, with_configs: bool = False) -> None:
        store = self.app.store
        infos = []
        for run_id in self.ids:
            try:
                infos.append(store.info(run_id))
            except Exception:
                continue
        configs = None
        if with_configs:
            configs = {}
            for info in infos:
                try:
                    configs[info.id] = flatten(run_config(store, info.id))
                except (ConfigError, OSError) as exc:
                    configs[info.id] = {"(config)": f"unreadable: {exc}"}
        self.post_message(CompareRead(infos, configs))

    @on(CompareRead)
    def compare_read(self, message: CompareRead) -> None:
        self.infos = message.infos
        columns = metric_columns(self.infos)
        if columns != self.columns:  # a run's meta.json now says what it measures
            self.columns = columns
            self._add_columns()
        if message.configs is not None:
            self.configs = message.configs
            self._fill_diff()
        self.redraw()

    @on(HistoryChanged)
    def history_changed(self, message: HistoryChanged) -> None:
        if message.run_ids & set(self.ids):
            self.redraw()

    def _fill_diff(self) -> None:
        table = self.query_one("#cmp-diff", DataTable)
        table.clear(columns=True)
        table.add_column("key")
        names = {i.id: i.name or i.id for i in self.infos}
        for run_id in self.configs:
            table.add_column(Text(names.get(run_id, run_id), style=self.app.colour(run_id)))
        diff = config_diff(self.configs)
        for key, values in diff:
            table.add_row(key, *[str(v) for v in values])
        if not diff:
            table.add_row("(the configs are identical)", *["" for _ in self.configs])

    def redraw(self) -> None:
        app = self.app
        legend = Text(" compare  ", style="bold")
        for info in self.infos:
            legend.append("● ", style=app.colour(info.id))
            legend.append(f"{info.name or info.id} ", style=app.colour(info.id))
            legend.append(f"{info.status}  ", style=STATUS_STYLE.get(info.status, "dim"))
        legend.append(f"   {app.chart_status()}", style="dim")
        self.query_one("#legend", Static).update(legend)
        loss = Chart(title="train loss", xlabel=X_LABELS[app.x_axis], log_y=app.log_y)
        title = chart_title(self.infos)
        acc = Chart(title=title, xlabel=X_LABELS[app.x_axis], empty="no val epoch yet")
        for info in self.infos:
            h = app.histories.get(info.id)
            if h is None:
                continue
            m = info.meta
            spe = m.total_steps / m.epochs if m and m.epochs and m.total_steps else 0.0
            colour = app.colour(info.id)
            name = info.name or info.id
            loss.lines.append(
                Line(
                    h.x_of(h.train, app.x_axis, spe),
                    h.train.np("loss"),
                    name,
                    colour,
                    app.smoothing_weight,
                )
            )
            x = h.x_of(h.val, app.x_axis, spe)
            for k, metric in enumerate(plotted(info, "acc")):  # the main one with points
                label = name if k == 0 else f"{name} {metric.label}"
                acc.lines.append(Line(x, h.val.np(metric.name), label, colour, points=k == 0))
        self.query_one("#cmp-loss", CurvePlot).show(loss)
        self.query_one("#cmp-acc", CurvePlot).show(acc)
        table = self.query_one("#cmp-metrics", DataTable)
        rows = metric_rows(self.infos, app.histories, self.columns)
        if table.row_count != len(rows) or len(table.columns) != len(rows[0] if rows else []):
            table.clear()
            for info, row in zip(self.infos, rows, strict=True):
                table.add_row(Text(row[0], style=app.colour(info.id)), *row[1:], key=info.id)
        else:
            for info, row in zip(self.infos, rows, strict=True):
                for col, value in enumerate(row[1:], start=1):
                    table.update_cell_at(Coordinate(self.infos.index(info), col), value)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_smoothing(self) -> None:
        self.app.cycle_smoothing()
        self.redraw()

    def action_x_axis(self) -> None:
        self.app.cycle_x_axis()
        self.redraw()

    def action_log_y(self) -> None:
        self.app.log_y = not self.app.log_y
        self.redraw()

    def action_tab(self, tab: str) -> None:
        self.query_one("#cmp-tabs", TabbedContent).active = tab
