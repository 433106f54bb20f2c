"""What the chart panes share: a pane that is one chart, a series' x values on the chosen axis,
and what an empty chart says about the run."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from textual.app import ComposeResult
from textual.widget import Widget

from tuneterm.store import RunInfo
from tuneterm.tui.history import X_LABELS, RunHistory, Series
from tuneterm.tui.panes.base import Need, Pane, PaneData
from tuneterm.tui.protocols import ChartSettings
from tuneterm.tui.widgets.curve import Chart, CurvePlot


class ChartPane(Pane):
    """A pane that is one chart of the selected run (widget `#plot-<id>`), drawn on compare
    too; a subclass says what the chart holds."""

    needs = Need.INFO | Need.HISTORY | Need.CHART
    compares = True

    def compose(self) -> ComposeResult:
        yield CurvePlot(id=f"plot-{self.id}")

    def draw(self, root: Widget, data: PaneData) -> None:
        root.query_one(f"#plot-{self.id}", CurvePlot).show(self.chart(data))

    @abstractmethod
    def chart(self, data: PaneData) -> Chart:
        """The selected run's chart."""


def steps_per_epoch(info: RunInfo | None) -> float:
    m = info.meta if info else None
    return m.total_steps / m.epochs if m and m.epochs and m.total_steps else 0.0


def x_values(
    history: RunHistory, series: Series, info: RunInfo | None, chart: ChartSettings
) -> np.ndarray:
    return history.x_of(series, chart.x_axis, steps_per_epoch(info))


def x_label(chart: ChartSettings) -> str:
    return X_LABELS[chart.x_axis]


def empty_text(info: RunInfo | None, what: str = "no training steps yet") -> str:
    """Why a chart of `info` is empty: no run selected, or what it lacks (and why it ended)."""
    if info is None:
        return "no run selected"
    if info.status in ("failed", "crashed") and info.reason:
        return f"{what}: {info.reason}"
    return what
