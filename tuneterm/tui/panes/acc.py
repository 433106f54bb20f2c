"""The Accuracy pane: the val metrics the run's spec draws here (accuracy, mAP, MAE...); on
compare, each run's main one with points and the others as plain lines."""

from __future__ import annotations

from collections.abc import Sequence

from tuneterm.store import RunInfo
from tuneterm.tui.metrics import colour, spec_of, val_curves, val_label
from tuneterm.tui.panes.base import ComparedRun, PaneData, register_pane
from tuneterm.tui.panes.runchart import ChartPane, empty_text, x_label, x_values
from tuneterm.tui.protocols import ChartSettings
from tuneterm.tui.widgets.curve import Chart, Line


def chart_title(infos: Sequence[RunInfo]) -> str:
    """The compare chart's title: each run's main val metric, once."""
    labels = dict.fromkeys(m[0].label for i in infos if (m := val_curves(i)))
    return "val " + " / ".join(labels) if labels else "val"


@register_pane
class AccuracyPane(ChartPane):
    id = "acc"
    key = "2"
    label = "Accuracy"

    def chart(self, data: PaneData) -> Chart:
        info, history, settings = data.info, data.history, data.chart
        # a run whose spec lists no val metric yet (a script) has not reported one
        what = "no val epoch yet" if spec_of(info).val else "no val metric reported yet"
        chart = Chart(xlabel=x_label(settings), empty=empty_text(info, what))
        if history is not None:
            x = x_values(history, history.val, info, settings)
            chart.lines = [
                Line(x, history.val.np(m.name), val_label(m.label), colour("acc", i),
                     points=True)
                for i, m in enumerate(val_curves(info))
            ]  # fmt: skip
        return chart

    def compare_chart(self, runs: Sequence[ComparedRun], chart: ChartSettings) -> Chart:
        title = chart_title([r.info for r in runs])
        out = Chart(title=title, xlabel=x_label(chart), empty="no val epoch yet")
        for run in runs:
            h = run.history
            if h is None:
                continue
            x = x_values(h, h.val, run.info, chart)
            for k, metric in enumerate(val_curves(run.info)):  # the main one with points
                label = run.name if k == 0 else f"{run.name} {metric.label}"
                out.lines.append(Line(x, h.val.np(metric.name), label, run.colour, points=k == 0))
        return out
