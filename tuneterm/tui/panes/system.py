"""The System pane: this machine's GPUs (from NVML, or why there are none), a distributed
run's ranks, and the run's own CPU and memory from its last sample."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from tuneterm.tui.panes.base import Need, Pane, PaneData, register_pane
from tuneterm.tui.widgets.panes import system_view


@register_pane
class SystemPane(Pane):
    id = "system"
    key = "3"
    label = "System"
    needs = Need.INFO | Need.HISTORY | Need.SYSTEM

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="system-view")

    def draw(self, root: Widget, data: PaneData) -> None:
        view = system_view(data.info, data.history, data.gpus, data.nvml_problem)
        root.query_one("#system-view", Static).update(view)
