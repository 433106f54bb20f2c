"""Screens of the tuneterm TUI."""

from __future__ import annotations

from textual.binding import Binding


def back_binding(keys: str, screen: str) -> Binding:
    """The key that closes a full screen opened from the run list (compare, group, queue): one
    definition so that every such screen says "Back" the same way; its id is `<screen>.close`
    for keymap.toml."""
    return Binding(keys, "close", "Back", id=f"{screen}.close", tooltip="Back to the run list")
