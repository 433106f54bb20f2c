"""The Config pane: the run's config.toml, under the training pipeline it resolves to."""

from __future__ import annotations

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from tuneterm.tui.panes.base import Need, Pane, PaneData, register_pane
from tuneterm.tui.reading import RunText


def config_view(text: RunText) -> Group:
    config = Syntax(text.config, "toml", theme="ansi_dark", background_color="default")
    pipeline = Text()
    pipeline.append("# training pipeline (resolved)\n", style="bold")
    for line in text.pipeline.splitlines():
        pipeline.append(f"#   {line}\n", style="dim")
    pipeline.append("\n")
    return Group(pipeline, config)


@register_pane
class ConfigPane(Pane):
    id = "config"
    key = "6"
    label = "Config"
    needs = Need.TEXT

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="config-view")

    def draw(self, root: Widget, data: PaneData) -> None:
        view = root.query_one("#config-view", Static)
        if data.text is None:
            view.update(Text("reading…" if data.info else "", style="dim"))
        else:
            view.update(config_view(data.text))
