"""Pick `model.name` from a list: torchvision's classifiers, timm's architectures and
pretrained tags, and the Hugging Face models in the local cache, searched as you type. The same
catalogs as `tuneterm models` (`tuneterm.config.modelnames`), read in a worker: the first read
of a catalog may import its library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tuneterm.config.choices import MODEL_SOURCES
from tuneterm.config.modelnames import ModelChoice, choices

SHOWN = 200  # matches listed at once; typing narrows them


def search(entries: list[ModelChoice], text: str) -> list[ModelChoice]:
    """The entries whose name holds every word typed (`vit small`), best first: a name that
    starts with the text, then the rest in catalog order."""
    words = text.lower().split()
    found = [e for e in entries if all(w in e.value.lower() for w in words)]
    start = text.strip().lower()
    return sorted(found, key=lambda e: not e.value.lower().split("/")[-1].startswith(start))


@dataclass
class CatalogRead(Message):
    """Worker -> screen: one source's names (or why there are none)."""

    source: str
    entries: list[ModelChoice]
    problem: str = ""


class ModelPicker(ModalScreen[str | None]):
    """Type to search, up/down to move, enter to pick; esc leaves model.name as it was."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="models.cancel",
            tooltip="Close without changing model.name",
        ),
        Binding("down", "move(1)", "Next", show=False, id="models.down", tooltip="Next model"),
        Binding("up", "move(-1)", "Previous", show=False, id="models.up", tooltip="Previous model"),
    ]

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current
        self.entries: list[ModelChoice] = []
        self.reading = list(MODEL_SOURCES)
        self.problems: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog models"):
            title = Text("model.name", style="bold")
            title.append(f"   now: {self.current}" if self.current else "", style="dim")
            yield Static(title, classes="dialog-title")
            yield Input(
                placeholder="search: resnet, timm/convnext, hf/…", id="models-search", compact=True
            )
            yield OptionList(id="models-list")
            yield Static("", id="models-status", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        for source in MODEL_SOURCES:
            self.read(source)
        self._show()

    @work(thread=True, group="models", exit_on_error=False)
    def read(self, source: str) -> None:
        try:
            self.post_message(CatalogRead(source, choices(source)))
        except Exception as exc:  # a broken install: the other sources still list
            self.post_message(CatalogRead(source, [], f"{source}: {exc}"))

    @on(CatalogRead)
    def catalog_read(self, message: CatalogRead) -> None:
        self.reading.remove(message.source)
        self.entries += message.entries
        if message.problem:
            self.problems.append(message.problem)
        self._show()

    @on(Input.Changed, "#models-search")
    def _typed(self) -> None:
        self._show()

    def _show(self) -> None:
        found = search(self.entries, self.query_one(Input).value)
        listing = self.query_one(OptionList)
        listing.clear_options()
        listing.add_options(
            Option(Text.assemble(e.value, (f"  {e.note}" if e.note else "", "dim")), id=e.value)
            for e in found[:SHOWN]
        )
        if found:
            listing.highlighted = 0
        status = f"{len(found)} of {len(self.entries)} models"
        if len(found) > SHOWN:
            status += f" (first {SHOWN}; type to narrow)"
        if self.reading:
            status += f"   reading {', '.join(self.reading)}…"
        status += "".join(f"   {p}" for p in self.problems)
        status += "   enter: pick  esc: cancel"
        self.query_one("#models-status", Static).update(Text(status))

    def action_move(self, delta: int) -> None:
        listing = self.query_one(OptionList)
        if listing.option_count:
            at = (listing.highlighted or 0) + delta
            listing.highlighted = max(0, min(at, listing.option_count - 1))

    @on(Input.Submitted, "#models-search")
    def _submitted(self) -> None:
        listing = self.query_one(OptionList)
        if listing.highlighted is not None and listing.option_count:
            self.dismiss(listing.get_option_at_index(listing.highlighted).id)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
