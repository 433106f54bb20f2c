"""The Config pane, in the run kind's terms (`RunView.setup`): the run's config.toml under
the training pipeline it resolves to; or, for a script run, the command it runs and its
[script] table."""

from __future__ import annotations

import shlex
import tomllib

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from tuneterm.tui.metrics import view_of
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


def tables(config: str, name: str) -> str:
    """The text of TOML table `name` and its sub-tables (`[script]`, `[script.env]`...),
    as the file has it."""
    out: list[str] = []
    inside = False
    for line in config.splitlines():
        head = line.strip()
        if head.startswith("[") and not head.startswith("[["):
            table = head.strip("[]").strip()
            inside = table == name or table.startswith(name + ".")
        if inside:
            out.append(line)
    return "\n".join(out).strip()


def command_view(text: RunText) -> Group:
    """The command (as one shell line, quoted where needed), its folder, then [script]."""
    try:
        script = tomllib.loads(text.config).get("script", {})
    except tomllib.TOMLDecodeError:
        script = {}
    argv = [str(a) for a in script.get("command") or []]
    head = Text()
    head.append("# command\n", style="bold")
    head.append(f"$ {shlex.join(argv)}\n" if argv else "(none)\n")
    head.append(f"# in {script.get('cwd') or 'the folder tuneterm was started in'}\n",
                style="dim")  # fmt: skip
    table = tables(text.config, "script") or "# no [script] table in config.toml"
    body = Syntax(table, "toml", theme="ansi_dark", background_color="default")
    return Group(head, body)


@register_pane
class ConfigPane(Pane):
    id = "config"
    key = "6"
    label = "Config"
    needs = Need.TEXT  # the kind (its view) never changes within a run

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="config-view")

    def draw(self, root: Widget, data: PaneData) -> None:
        view = root.query_one("#config-view", Static)
        if data.text is None:
            view.update(Text("reading…" if data.info else "", style="dim"))
        else:
            command = view_of(data.info).setup == "command"
            view.update(command_view(data.text) if command else config_view(data.text))
