"""Screens of the tuneterm TUI."""

from __future__ import annotations

from textual.binding import Binding

from tuneterm.tui.protocols import Hosted


def back_binding(keys: str, screen: str) -> Binding:
    """The key that closes a full screen opened from the run list (compare, group, queue): one
    definition so that every such screen says "Back" the same way; its id is `<screen>.close`
    for keymap.toml."""
    return Binding(keys, "close", "Back", id=f"{screen}.close", tooltip="Back to the run list")


class ChartKeys(Hosted):
    """Mixed into a screen that draws charts: z, x and g change the chart settings the detail
    panes and compare share (kept on the app), then the screen redraws its charts."""

    def redraw_charts(self) -> None:
        raise NotImplementedError

    def action_smoothing(self) -> None:
        self.host.cycle_smoothing()
        self.redraw_charts()

    def action_x_axis(self) -> None:
        self.host.cycle_x_axis()
        self.redraw_charts()

    def action_log_y(self) -> None:
        self.host.log_y = not self.host.log_y
        self.redraw_charts()
