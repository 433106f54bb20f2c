"""Compare marked runs: overlaid curves with a stable colour per run, a metrics table with best
and last values, and a config diff of only the keys that differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

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
from tuneterm.runs import view
from tuneterm.store import RunInfo
from tuneterm.tasks import Metric
from tuneterm.tui.history import RunHistory
from tuneterm.tui.messages import HistoryChanged
from tuneterm.tui.metrics import best_last, classes_of, spec_of, test_value
from tuneterm.tui.panes import ComparedRun, Pane, registered_panes
from tuneterm.tui.rows import STATUS_STYLE, number
from tuneterm.tui.screens import ChartKeys, back_binding
from tuneterm.tui.widgets.curve import CurvePlot

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
        """`val acc`, `test acc`; a script's own `val err` keeps its one `val`."""
        split = "test" if self.test else "val"
        label = self.metric.label
        return label if label.split(" ")[0] == split else f"{split} {label}"


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


NARROW = 100  # columns: below this the metrics table has a row per metric (`_narrow`)
NAME_CUT = 18  # a run's name heading its column there


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
        cells = [_cell(info, h, c) for c in columns]
        rows.append(
            [
                info.name or info.id,
                info.status,
                view.position(info),
                *cells[:n_val],
                number(float(loss[-1])) if len(loss) else "",
                *cells[n_val:],
            ]
        )
    return rows


class CompareScreen(ChartKeys, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("escape,c", "compare"),
        Binding(
            "z",
            "smoothing",
            "Smoothing",
            id="chart.smoothing",
            tooltip="Cycle the smoothing of the loss curves",
        ),
        Binding(
            "x", "x_axis", "X axis", id="chart.x_axis", tooltip="Plot against step, epoch or time"
        ),
        Binding(
            "g", "log_y", "Log y", id="chart.log_y", tooltip="Toggle a logarithmic y axis for loss"
        ),
        Binding(
            "1",
            "tab('metrics')",
            "Metrics",
            id="compare.metrics",
            show=False,
            tooltip="Show the metrics table: best and last value of each run",
        ),
        Binding(
            "2",
            "tab('diff')",
            "Config diff",
            id="compare.diff",
            show=False,
            tooltip="Show the config keys whose values differ between the runs",
        ),
    ]

    def __init__(self, infos: list[RunInfo]) -> None:
        super().__init__()
        self.infos = infos
        self.ids = [i.id for i in infos]
        self.configs: dict[str, dict[str, Any]] = {}
        self.columns: list[Column] = metric_columns(infos)
        # The panes that draw a chart of several runs (loss and accuracy), side by side.
        self.panes: list[Pane] = [cls() for cls in registered_panes() if cls.compares]

    def compose(self) -> ComposeResult:
        yield Static("", id="legend")
        with Horizontal(id="cmp-charts"):
            for pane in self.panes:
                yield CurvePlot(id=f"cmp-{pane.id}")
        with TabbedContent(id="cmp-tabs"):
            with TabPane("1 Metrics (best / last)", id="metrics"):
                yield DataTable(id="cmp-metrics", cursor_type="row", zebra_stripes=True)
            with TabPane("2 Config diff", id="diff"):
                yield DataTable(id="cmp-diff", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.host.compared = list(self.ids)
        for run_id in self.ids:
            if run_id not in self.host.marked:
                self.host.toggle_mark(run_id)  # a colour of its own, kept while marked
        self._add_columns()
        self.read(with_configs=True)
        self.set_interval(2.0, self.read)
        self.redraw()

    def _narrow(self) -> bool:
        """Below NARROW columns the metrics table turns: a row per metric, a column per run,
        so that two or three runs fit whole at 80 columns."""
        return self.app.size.width < NARROW

    def _add_columns(self) -> None:
        metrics = self.query_one("#cmp-metrics", DataTable)
        metrics.clear(columns=True)
        if self._narrow():
            metrics.add_column("metric")
            for info in self.infos:  # the legend above has the name whole
                name = info.name or info.id
                name = name if len(name) <= NAME_CUT else name[: NAME_CUT - 1] + "…"
                metrics.add_column(Text(name, style=self.host.colour(info.id)))
            return
        for label in table_header(self.columns):
            metrics.add_column(label)

    def on_unmount(self) -> None:
        self.host.compared = []

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def read(self, with_configs: bool = False) -> None:
        store = self.host.store
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
            table.add_column(Text(names.get(run_id, run_id), style=self.host.colour(run_id)))
        diff = config_diff(self.configs)
        for key, values in diff:
            table.add_row(key, *[str(v) for v in values])
        if not diff:
            table.add_row("(the configs are identical)", *["" for _ in self.configs])

    def redraw(self) -> None:
        self._show_legend()
        self._draw_charts()
        self._fill_metrics()

    def _show_legend(self) -> None:
        host = self.host
        legend = Text(" compare  ", style="bold")
        for info in self.infos:
            legend.append("● ", style=host.colour(info.id))
            legend.append(f"{info.name or info.id} ", style=host.colour(info.id))
            legend.append(f"{info.status}  ", style=STATUS_STYLE.get(info.status, "dim"))
        legend.append(f"   {host.chart_status()}", style="dim")
        self.query_one("#legend", Static).update(legend)

    def _draw_charts(self) -> None:
        host = self.host
        runs = [
            ComparedRun(info, host.histories.get(info.id), host.colour(info.id))
            for info in self.infos
        ]
        for pane in self.panes:
            self.query_one(f"#cmp-{pane.id}", CurvePlot).show(pane.compare_chart(runs, host))

    def _fill_metrics(self) -> None:
        host = self.host
        table = self.query_one("#cmp-metrics", DataTable)
        rows = metric_rows(self.infos, host.histories, self.columns)
        cells: list[list[str | Text]]
        if self._narrow():
            header = table_header(self.columns)
            cells = [[header[i], *(r[i] for r in rows)] for i in range(1, len(header))]
            keys = header[1:]
        else:
            cells = [[Text(r[0], style=host.colour(i.id)), *r[1:]]
                     for i, r in zip(self.infos, rows, strict=True)]  # fmt: skip
            keys = [i.id for i in self.infos]
        if table.row_count != len(cells) or len(table.columns) != len(cells[0] if cells else []):
            if self._narrow():
                self._add_columns()  # a column per run: the runs read may have changed
            table.clear()
            for key, row in zip(keys, cells, strict=True):
                table.add_row(*row, key=key)
        else:
            for index, row in enumerate(cells):
                for col, value in enumerate(row[1:], start=1):
                    table.update_cell_at(Coordinate(index, col), value)

    def action_close(self) -> None:
        self.dismiss(None)

    def redraw_charts(self) -> None:
        self.redraw()

    def action_tab(self, tab: str) -> None:
        self.query_one("#cmp-tabs", TabbedContent).active = tab
