"""A chart that downsamples before plotting: plotext never sees more than ~2 points a column."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tuneterm.tui.history import curve

# Colours plotext and Rich both know by name: 16-colour safe, no true colour assumed.
PALETTE: tuple[str, ...] = ("cyan", "magenta", "green", "yellow", "blue", "red", "white", "orange")


@dataclass
class Line:
    x: np.ndarray
    y: np.ndarray
    label: str
    color: str = "cyan"
    smoothing: float = 0.0
    points: bool = False  # a few points (val per epoch): draw markers too


@dataclass
class Chart:
    lines: list[Line] = field(default_factory=list)
    title: str = ""
    xlabel: str = ""
    log_y: bool = False
    empty: str = "no data yet"


class CurvePlot(PlotextPlot):
    """Set `chart`; the widget downsamples to its own width at render time."""

    DEFAULT_CSS = """
    CurvePlot { height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart = Chart()
        self.last_render_ms = 0.0
        self.last_points = 0

    def show(self, chart: Chart) -> None:
        self.chart = chart
        self.refresh()

    def render(self) -> RenderResult:
        started = time.perf_counter()
        chart = self.chart
        width, height = self.size.width, self.size.height
        if not any(len(line.y) for line in chart.lines) or width < 12 or height < 4:
            return Text(chart.empty, style="dim")
        plt = self.plt
        plt.clear_figure()
        columns = max(8, width - 10)
        points = 0
        for line in chart.lines:
            if not len(line.y):
                continue
            c = curve(line.x, line.y, columns, line.smoothing, chart.log_y)
            if not c.x:
                continue
            points += len(c.x)
            plt.plot(c.x, c.y, label=line.label, color=line.color, marker="braille")
            if (line.points and len(c.x) <= columns // 2) or len(c.x) <= 3:
                plt.scatter(c.x, c.y, color=line.color, marker="dot")
        if chart.log_y:
            plt.yscale("log")
        if chart.title:
            plt.title(chart.title)
        if chart.xlabel:
            plt.xlabel(chart.xlabel)
        out = super().render()
        self.last_points = points
        self.last_render_ms = (time.perf_counter() - started) * 1000
        return out
