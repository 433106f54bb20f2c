"""The Loss pane: train loss and the val losses of the run's metric spec; on compare, the
train loss of every compared run."""

from __future__ import annotations

from collections.abc import Sequence

from tuneterm.tui.metrics import colour, plotted, val_label
from tuneterm.tui.panes.base import ComparedRun, PaneData, register_pane
from tuneterm.tui.panes.runchart import ChartPane, empty_text, x_label, x_values
from tuneterm.tui.protocols import ChartSettings
from tuneterm.tui.widgets.curve import Chart, Line


@register_pane
class LossPane(ChartPane):
    id = "loss"
    key = "1"
    label = "Loss"

    def chart(self, data: PaneData) -> Chart:
        info, history, settings = data.info, data.history, data.chart
        chart = Chart(xlabel=x_label(settings), log_y=settings.log_y, empty=empty_text(info))
        if history is not None:
            train_x = x_values(history, history.train, info, settings)
            chart.lines = [
                Line(train_x, history.train.np("loss"), "train loss", "cyan",
                     settings.smoothing_weight),
            ]  # fmt: skip
            x = x_values(history, history.val, info, settings)
            chart.lines += [
                Line(x, history.val.np(m.name), val_label(m.label), colour("loss", i), points=True)
                for i, m in enumerate(plotted(info, "loss"))
            ]
        return chart

    def compare_chart(self, runs: Sequence[ComparedRun], chart: ChartSettings) -> Chart:
        out = Chart(title="train loss", xlabel=x_label(chart), log_y=chart.log_y)
        for run in runs:
            h = run.history
            if h is None:
                continue
            x = x_values(h, h.train, run.info, chart)
            out.lines.append(
                Line(x, h.train.np("loss"), run.name, run.colour, chart.smoothing_weight)
            )
        return out
