"""Compare marked runs: overlaid curves with a stable colour per run, a metrics table with best
and last values, and a config diff of only the keys that differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from tuneterm.config import ConfigError, flatten
from tuneterm.store import RunInfo
from tuneterm.tui.history import X_LABELS, RunHistory
from tuneterm.tui.messages import HistoryChanged
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


def _best_last(values: np.ndarray, higher: bool) -> tuple[float, float]:
    ok = values[~np.isnan(values)] if len(values) else values
    if not len(ok):
        return math.nan, math.nan
    return (float(ok.max()) if higher else float(ok.min())), float(ok[-1])


def is_detect(info: RunInfo) -> bool:
    return info.meta is not None and info.meta.task == "detect"


def metric_rows(infos: list[RunInfo], histories: dict[str, RunHistory]) -> list[list[str]]:
    """One row per run; with a detect run among them, two more columns: val mAP (best /
    last) and test mAP@.5."""
    detect = any(is_detect(i) for i in infos)
    rows = []
    for info in infos:
        h = histories.get(info.id) or RunHistory()
        acc_best, acc_last = _best_last(h.val.np("val_acc"), True)
        vl_best, vl_last = _best_last(h.val.np("val_loss"), False)
        loss = h.train.np("loss")
        meta = info.meta
        if meta and meta.best and math.isnan(acc_best):  # no events read yet: fall back on meta
            acc_best = float(meta.best.get("val_acc", math.nan))
            vl_best = float(meta.best.get("val_loss", math.nan))
        final = meta.final if meta else {}
        test = h.test.get("acc", final.get("test_acc")) if h.test or final else None
        rows.append(
            [
                info.name or info.id,
                info.status,
                f"{meta.epoch}/{meta.epochs}" if meta and meta.epochs else "",
                f"{number(acc_best)} / {number(acc_last)}",
                f"{number(vl_best)} / {number(vl_last)}",
                number(float(loss[-1])) if len(loss) else "",
                number(test) if test is not None else "",
            ]
        )
        if detect:
            map_best, map_last = _best_last(h.val.np("val_map"), True)
            if meta and meta.best and math.isnan(map_best):
                map_best = float(meta.best.get("val_map", math.nan))
            test_map = h.test.get("map50", final.get("test_map50", final.get("val_map50")))
            rows[-1] += [
                f"{number(map_best)} / {number(map_last)}" if is_detect(info) else "",
                number(test_map) if test_map is not None else "",
            ]
    return rows


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
        metrics = self.query_one("#cmp-metrics", DataTable)
        for label in ("run", "status", "epoch", "val acc", "val loss", "loss", "test acc"):
            metrics.add_column(label)
        if any(is_detect(i) for i in self.infos):
            metrics.add_column("val mAP")
            metrics.add_column("test mAP@.5")
        self.read(with_configs=True)
        self.set_interval(2.0, self.read)
        self.redraw()

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
                    configs[info.id] = flatten(store.config(info.id))
                except (ConfigError, OSError) as exc:
                    configs[info.id] = {"(config)": f"unreadable: {exc}"}
        self.post_message(CompareRead(infos, configs))

    @on(CompareRead)
    def compare_read(self, message: CompareRead) -> None:
        self.infos = message.infos
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
        kinds = {is_detect(i) for i in self.infos}
        title = {frozenset([True]): "val mAP", frozenset([False]): "val acc"}.get(
            frozenset(kinds), "val acc / mAP"
        )
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
            metric = "val_map" if is_detect(info) else "val_acc"
            acc.lines.append(
                Line(h.x_of(h.val, app.x_axis, spe), h.val.np(metric), name, colour, points=True)
            )
        self.query_one("#cmp-loss", CurvePlot).show(loss)
        self.query_one("#cmp-acc", CurvePlot).show(acc)
        table = self.query_one("#cmp-metrics", DataTable)
        rows = metric_rows(self.infos, app.histories)
        if table.row_count != len(rows):
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
