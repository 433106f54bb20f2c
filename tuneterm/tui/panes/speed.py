"""The Speed pane, in the run kind's terms (`RunView.throughput`): the engine's examples per
second and data wait; or, for a run that reports only steps (a script), steps per second and
the step time, from the step and time of its train events. A one-line summary above."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from tuneterm.tui.history import RunHistory
from tuneterm.tui.metrics import throughput_unit, view_of
from tuneterm.tui.panes.base import Need, Pane, PaneData, register_pane
from tuneterm.tui.panes.runchart import empty_text, x_label, x_values
from tuneterm.tui.rows import number
from tuneterm.tui.widgets.curve import Chart, CurvePlot, Line
from tuneterm.tui.widgets.panes import speed_summary

# A step rate is measured over at least this many seconds: reports that reach the store in
# a burst (a script's API file is read ten times a second) would otherwise read as spikes.
RATE_SPAN_S = 1.0


def step_rates(
    step: np.ndarray, t: np.ndarray, starts: Sequence[int] = (), span: float = RATE_SPAN_S
) -> np.ndarray:
    """Steps per second at each train event, against the latest event at least `span`
    seconds before it and after the last of `starts` (the rows where a resumed run begins:
    the pause is not a step); NaN where there is none, or where the step did not move."""
    out = np.full(len(step), math.nan)
    if len(step) < 2:
        return out
    t = np.maximum.accumulate(t)
    before = np.searchsorted(t, t - span, side="right") - 1
    rows = np.arange(len(step))
    first = np.zeros(len(step), dtype=int)  # the first row of each row's run segment
    for start in sorted(starts):
        first[rows >= start] = start
    i = np.nonzero(before >= first)[0]
    j = before[i]
    steps, seconds = step[i] - step[j], t[i] - t[j]
    ok = (steps > 0) & (seconds > 0)
    out[i[ok]] = steps[ok] / seconds[ok]
    return out


def step_summary(history: RunHistory | None) -> Text:
    """`12.5 steps/s   step time 80 ms   (mean 11.9 steps/s over 130 steps)`."""
    if history is None or not len(history.train):
        return Text("no train steps reported yet", style="dim")
    step, t = history.train.np("step"), history.train.np("t")
    rates = step_rates(step, t, history.resume_rows)
    known = rates[~np.isnan(rates)]
    if not len(known):
        return Text("one train step reported so far: no step time yet", style="dim")
    last = float(known[-1])
    text = Text()
    text.append(f"{number(last)} steps/s", style="bold")
    text.append(f"   step time {duration(1.0 / last)}")
    steps = seconds = 0.0  # over the run's segments, the pauses between them left out
    bounds = [0, *sorted(r for r in history.resume_rows if 0 < r < len(step)), len(step)]
    for a, b in itertools.pairwise(bounds):
        if b - a > 1:
            steps += float(step[b - 1] - step[a])
            seconds += float(t[b - 1] - t[a])
    if steps > 0 and seconds > 0:
        text.append(f"   (mean {number(steps / seconds)} steps/s over {steps:.0f} steps)")
    return text


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{number(seconds)} s"


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
        if view_of(data.info).throughput == "steps":
            self._draw_steps(root, data)
        else:
            self._draw_inputs(root, data)

    def _draw_inputs(self, root: Widget, data: PaneData) -> None:
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

    def _draw_steps(self, root: Widget, data: PaneData) -> None:
        info, history, settings = data.info, data.history, data.chart
        root.query_one("#speed-summary", Static).update(step_summary(history))
        what = "no step times yet"
        speed = Chart(title="steps/s", xlabel=x_label(settings), empty=empty_text(info, what))
        took = Chart(title="step time (s)", xlabel=x_label(settings), empty="")
        if history is not None and len(history.train):
            x = x_values(history, history.train, info, settings)
            train = history.train
            rates = step_rates(train.np("step"), train.np("t"), history.resume_rows)
            if not np.isnan(rates).all():
                speed.lines = [Line(x, rates, "steps/s", "cyan")]
                took.lines = [Line(x, 1.0 / rates, "step time (s)", "yellow")]
        root.query_one("#plot-speed", CurvePlot).show(speed)
        root.query_one("#plot-wait", CurvePlot).show(took)
