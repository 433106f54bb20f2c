"""A script's output as lines for the log pane, in bounded memory.

Bytes come in as the pipe gives them. A `\\r` (a tqdm redraw) starts the line over, so a line
keeps only its last state; a line longer than `MAX_LINE` keeps its first `MAX_LINE` bytes (the
raw log keeps it whole); bytes that are not UTF-8 are replaced, escape sequences and C0/C1
control characters dropped (`tuneterm.store.text.printable`).
"""

from __future__ import annotations

from tuneterm.store.text import printable

MAX_LINE = 4096  # bytes of one line kept for its event (and for metric parsing)


def clean(raw: bytes) -> str:
    """Printable text of one line: UTF-8 (errors replaced), escape sequences and controls
    dropped."""
    return printable(raw.decode("utf-8", errors="replace")).rstrip()


class LineSplitter:
    """Feed chunks, get whole lines (their last `\\r` state), each at most `MAX_LINE` bytes."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self.cut = False  # the current line was longer than max_line
        self._redraw = False  # a \r came: the next text replaces the line

    def feed(self, chunk: bytes) -> list[str]:
        out = []
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            self._add(piece)
            if nl < 0:
                break
            out.append(self._take())
            start = nl + 1
        return out

    def _add(self, piece: bytes) -> None:
        for i, part in enumerate(piece.split(b"\r")):
            if i > 0:  # a redraw: the line starts over once new text comes (not for \r\n)
                self._redraw = True
            if not part:
                continue
            if self._redraw:
                self._buf.clear()
                self.cut = self._redraw = False
            room = self.max_line - len(self._buf)
            if len(part) > room:
                self.cut = True
                part = part[: max(room, 0)]
            self._buf += part

    def _take(self) -> str:
        line = clean(bytes(self._buf)) + (" [...]" if self.cut else "")
        self._buf.clear()
        self.cut = self._redraw = False
        return line

    def pending(self) -> str:
        """The line being written now (a progress bar's current state), without taking it."""
        return clean(bytes(self._buf))

    def close(self) -> list[str]:
        return [self._take()] if self._buf else []
