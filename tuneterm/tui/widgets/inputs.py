"""Text widgets that keep the order of keys sent in one burst (a paste of keys, `tmux
send-keys`, a fast typist on a slow link).

Textual's Input and TextArea insert a printable key as soon as it reaches the widget, but their
own bound keys (backspace, delete, the arrows, home, end) first bubble up to the app and come
back as actions. In a burst the typed text overtakes them: `backspace backspace 1 6` on "64"
gave "64" (the TOML) or "" (the form). Here the widget's own bindings run where the key
arrives, in the order the keys were sent.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Input


async def run_own_binding(widget: Widget, event: events.Key) -> bool:
    """Run `widget`'s own binding of a non-printable key at once; whether there was one."""
    bound = widget._bindings.key_to_bindings.get(event.key)
    if not bound or event.is_printable:
        return False
    event.stop()
    event.prevent_default()
    await widget.run_action(bound[0].action)
    return True


class OrderedInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        if not await run_own_binding(self, event):
            await super()._on_key(event)
