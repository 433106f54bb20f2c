"""The Speed pane: throughput in the run's unit and the share of step time spent waiting for
data, with a one-line summary above."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from tuneterm.tui.metrics import throughput_unit
from tuneterm.tui.panes.base import Need, Pane, PaneData, register_pane
from tuneterm.tui.panes.runchart import empty_text, x_label, x_values
from tuneterm.tui.widgets.curve import Chart, CurvePlot, Line
from tuneterm.tui.widgets.panes import speed_summary


@register_pane
class SpeedPane(Pane):
    id = "speed"
    key = "4"
    label = "Speed"
    needs = Need.INFO | Need.HISTORY | Need.CHART

    def compose(self) -> ComposeResult:
        yield Static("", id="speed-summary")
        with Horizontal():
            yield CurvePlot(id="plot-speed")
            yield CurvePlot(id="plot-wait")

    def draw(self, root: Widget, data: PaneData) -> None:
        info, history, settings = data.info, data.history, data.chart
        unit = throughput_unit(info)
        root.query_one("#speed-summary", Static).update(speed_summary(history, unit))
        speed = Chart(title=unit, xlabel=x_label(settings), empty=empty_text(info))
        wait = Chart(title="data wait %", xlabel=x_label(settings), empty="")
        if history is not None:
            x = x_values(history, history.train, info, settings)
            speed.lines = [Line(x, history.train.np("examples_s"), unit, "cyan")]
            wait.lines = [Line(x, history.train.np("data_wait") * 100, "data wait %", "yellow")]
        root.query_one("#plot-speed", CurvePlot).show(speed)
        root.query_one("#plot-wait", CurvePlot).show(wait)
