"""The Test pane, in the run kind's terms (`RunView.final`): the final test figures the run's
metric spec lists, its main figure per class (worst first) and the confusion matrix, once the
run has evaluated its test split; or, for a run with no test split of its own (a script), the
last and best value of each metric it reported, and the best of the run's metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from tuneterm.runs import view
from tuneterm.store import RunInfo
from tuneterm.tasks import Metric
from tuneterm.tui.history import RunHistory, Series
from tuneterm.tui.metrics import best_last, spec_of, test_metrics, test_value, view_of
from tuneterm.tui.panes.base import Need, Pane, PaneData, register_pane

CONFUSION_MAX = 12  # classes; a larger matrix does not fit the pane


def no_results(info: RunInfo | None) -> Text:
    if info is not None and info.alive:
        return Text("The test split is evaluated when the run completes.", style="dim")
    return Text("No test results: the run did not complete.", style="dim")


def figures_line(
    shown: Sequence[Metric], test: Mapping[str, Any], final: Mapping[str, Any]
) -> Text:
    """`test: acc 0.91   top5 0.99   n = 300   (best checkpoint: epoch 3)`."""
    figures = [(m, test_value(m, test, final)) for m in shown]
    head = Text()
    head.append(f"{test.get('split', 'test')}: ", style="bold")
    head.append("   ".join(f"{m.label} {m.format(v)}" for m, v in figures if v is not None))
    if test.get("n"):
        head.append(f"   n = {test['n']}")
    best_epoch = test.get("epoch", final.get("best_epoch"))
    if best_epoch is not None:
        head.append(f"   (best checkpoint: epoch {best_epoch})", style="dim")
    return head


def bar_style(value: float) -> str:
    return "red" if value < 0.5 else ("yellow" if value < 0.8 else "green")


def per_class_table(per_class: Mapping[str, float], what: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    table.add_column("class")
    table.add_column(what, justify="right")
    table.add_column("", min_width=10)
    for name, value in sorted(per_class.items(), key=lambda kv: kv[1]):
        bar = Text("█" * round(float(value) * 20), style=bar_style(value))
        table.add_row(name, f"{value:.3f}", bar)
    return table


def confusion_table(
    confusion: Sequence[Sequence[int]] | None, classes: Sequence[str]
) -> Table | None:
    """The matrix, rows true and columns predicted; None when it is too large or does not
    match the classes."""
    if not confusion or not 0 < len(confusion) <= CONFUSION_MAX or len(classes) != len(confusion):
        return None
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("true \\ pred")
    for c in classes:
        table.add_column(c[:6], justify="right")
    for name, row in zip(classes, confusion, strict=True):
        table.add_row(name[:12], *[str(v) for v in row])
    return table


def test_view(info: RunInfo | None, history: RunHistory | None) -> RenderableType:
    """The final test figures the run's metric spec lists, per class (worst first), confusion."""
    final: dict[str, Any] = dict(info.meta.final) if info and info.meta else {}
    test = history.test if history and history.test else {}
    if not final and not test:
        return no_results(info)
    shown = test_metrics(info)
    parts: list[RenderableType] = [figures_line(shown, test, final)]
    per_class: dict[str, float] = dict(test.get("per_class") or final.get("per_class") or {})
    if per_class:
        what = shown[0].label if shown else "value"  # the kind's main figure: acc, mAP
        parts += [Text(f"{what} per class (worst first)", style="bold"),
                  per_class_table(per_class, what)]  # fmt: skip
    confusion = confusion_table(test.get("confusion") or final.get("confusion"), list(per_class))
    if confusion is not None:
        parts += [Text("confusion", style="bold"), confusion]
    return Group(*parts)


def last_row(table: Table, label: str, metric: Metric, series: Series) -> None:
    """One metric's last value, its best and the step of its best (nothing if never set)."""
    values = series.np(metric.name)
    best, last = best_last(values, metric)
    if last != last:
        return
    at = int(np.nonzero(values == best)[0][0])
    step = series.np("step")[at]
    table.add_row(label, metric.format(last), metric.format(best), f"{step:.0f}")


def last_view(info: RunInfo | None, history: RunHistory | None) -> RenderableType:
    """The last and best value of each metric the run reported, and the run's own metric."""
    if history is None or not (len(history.train) or len(history.val)):
        alive = info is not None and info.alive
        return Text("No metrics reported yet." if alive else "No metrics: the run reported none.",
                    style="dim")  # fmt: skip
    spec = spec_of(info)
    steps = [s.np("step")[-1] for s in (history.train, history.val) if len(s)]
    state = "latest" if info is not None and info.alive else "final"
    status = f"{info.status}, " if info is not None else ""
    head = Text(f"{state} metrics ({status}step {max(steps):.0f})", style="bold")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("metric", "last", "best", "at step"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    loss = Metric("loss", "train loss", higher=False)
    last_row(table, "train loss", loss, history.train)
    for metric in spec.val:  # the run's metrics, as its spec names them
        last_row(table, metric.label, metric, history.val)
    parts: list[RenderableType] = [head, table]
    best = view.best(info) if info is not None else None
    if best is not None:
        where = info.meta.best.get("step") if info is not None and info.meta else None
        at = f" at step {where}" if where is not None else ""
        parts += [Text(""), Text(f"best {best.metric.name} {best.text}{at} (the run's metric)",
                                 style="bold")]  # fmt: skip
    return Group(*parts)


@register_pane
class TestPane(Pane):
    __test__ = False  # not a pytest class, whatever its name

    id = "test"
    key = "7"
    label = "Test"
    needs = Need.INFO | Need.HISTORY

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="test-view")

    def draw(self, root: Widget, data: PaneData) -> None:
        draw = last_view if view_of(data.info).final == "last" else test_view
        root.query_one("#test-view", Static).update(draw(data.info, data.history))
