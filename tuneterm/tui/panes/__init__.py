"""The detail panes of a run, one module each, and their registry.

To add a pane, write a `Pane` subclass in a module of its own, decorate it with
`@register_pane`, and import the module below (a plug-in or a test may register one from
anywhere before the main screen is built). The main screen makes a tab and a number key of
each registered pane; compare draws a chart of each pane that `compares`.
"""

from tuneterm.tui.panes import acc, config, log, loss, results, speed, system
from tuneterm.tui.panes.base import (
    ComparedRun,
    Need,
    Pane,
    PaneData,
    register_pane,
    registered_panes,
    unregister_pane,
)

BUILTIN = (loss, acc, system, speed, log, config, results)  # imported for their registration

__all__ = [
    "BUILTIN",
    "ComparedRun",
    "Need",
    "Pane",
    "PaneData",
    "register_pane",
    "registered_panes",
    "unregister_pane",
]
