"""User text made safe for a terminal: the one cleaning every printer of a script's output, a
metric name or a run's name uses.

A script prints what it likes, and a terminal obeys escape sequences: ESC-introduced ones
(CSI, OSC, DCS...), their 8-bit C1 forms (U+009B is a CSI on many terminals) and bare control
characters (a newline splits the line it is shown in). All of them are dropped; text is kept
as it is otherwise (brackets too: it is never read as markup).
"""

from __future__ import annotations

import re

# Whole sequences first, so that their parameters go with them; then any lone control left.
_SEQUENCES = (
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI, 7- and 8-bit
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS...
    r"|\x1b[ -/]*[0-~]"  # two-character escapes (ESC 7, ESC ( B, ...)
)
_CONTROL_KEEP_TABS = re.compile(_SEQUENCES + r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL = re.compile(_SEQUENCES + r"|[\x00-\x1f\x7f-\x9f]")


def printable(text: str, tabs: bool = True) -> str:
    """`text` without escape sequences or C0/C1 control characters (tabs kept if `tabs`)."""
    return (_CONTROL_KEEP_TABS if tabs else _CONTROL).sub("", text)
