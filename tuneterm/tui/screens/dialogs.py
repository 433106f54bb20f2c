"""Small modal screens: confirm an action, ask for a line of text, show the keys."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no for an action that cannot be undone (stop, kill, delete)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes", tooltip="Yes, do it"),
        Binding(
            "n,escape",
            "answer(False)",
            "No",
            id="confirm.no",
            tooltip="No, leave things as they are",
        ),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question, style="bold"), classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="dialog-detail")
            yield Static("[b]y[/b] / enter: yes    [b]n[/b] / esc: no", classes="dialog-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    """One line of text (a name, tags, notes); esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="prompt.cancel",
            tooltip="Close without changing anything",
        )
    ]

    def __init__(self, title: str, value: str = "", hint: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Input(value=self.value, id="prompt-input")
            yield Static(self.hint or "enter: save    esc: cancel", classes="dialog-keys")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key of the screen underneath, with its binding id (for keymap.toml)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,q,question_mark", "close", "Close", id="help.close", tooltip="Close the help"
        )
    ]

    def __init__(self, rows: list[tuple[str, str, str]], where: str) -> None:
        super().__init__()
        self.rows, self.where = rows, where

    def compose(self) -> ComposeResult:
        table = Table(box=None, pad_edge=False, header_style="bold", expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("action")
        table.add_column("id (keymap.toml)", style="dim", no_wrap=True)
        for key, description, binding_id in self.rows:
            table.add_row(key, description, binding_id)
        with Vertical(classes="dialog help"):
            yield Static(Text(f"Keys: {self.where}", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(table)
            yield Static(
                "Override keys in keymap.toml in the settings folder: "
                '[keys] run.stop = "ctrl+s".  ctrl+p: command palette.  esc: close',
                classes="dialog-keys",
            )

    def action_close(self) -> None:
        self.dismiss(None)
