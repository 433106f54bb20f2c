"""An Input that keeps the order of keys sent in one burst (a paste of keys, `tmux send-keys`,
a fast typist on a slow link).

Textual's Input inserts a printable key as soon as it reaches the widget, but its own bound
keys (backspace, delete, the arrows, home, end) first bubble up to the app and come back as
actions. In a burst the typed text overtakes them: `backspace backspace 6 4` on "32" gave "".
Here the Input's own bindings run where the key arrives, in the order the keys were sent.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        bound = self._bindings.key_to_bindings.get(event.key)
        if bound and not event.is_printable:
            event.stop()
            event.prevent_default()
            await self.run_action(bound[0].action)
            return
        await super()._on_key(event)
