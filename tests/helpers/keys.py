"""Keys as a fast typist or `tmux send-keys` sends them: all queued at once, where
`pilot.press` waits for the app to go idle after each key."""

from __future__ import annotations

from typing import Any

from textual import events

NAMED = {"/": "slash", " ": "space"}


async def burst(pilot: Any, *keys: str) -> None:
    """Queue every key before the app handles the first; `keys` are characters or key names
    ("backspace", "ctrl+l")."""
    for key in keys:
        char = key if len(key) == 1 else None
        pilot.app.post_message(events.Key(NAMED.get(key, key), char))
    await pilot.pause()
    await pilot.pause()
