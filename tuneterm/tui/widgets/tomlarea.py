"""A TextArea that highlights TOML without tree-sitter, and marks the lines that have errors."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.style import Style
from textual import events
from textual._text_area_theme import _BUILTIN_THEMES  # the stock syntax colours
from textual.widgets import TextArea
from textual.widgets.text_area import TextAreaTheme

from tuneterm.tui.widgets.inputs import run_own_binding

ERROR = "tuneterm.error"
_SECTION = re.compile(r"^\s*\[\[?[^\]]*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"']+)\s*=")
_TOKENS = re.compile(
    r"(?P<comment>#.*$)"
    r"|(?P<string>\"(?:[^\"\\]|\\.)*\"?|'[^']*'?)"
    r"|(?P<boolean>\b(?:true|false)\b)"
    r"|(?P<number>[+-]?(?:\d[\d_]*)(?:\.\d+)?(?:[eE][+-]?\d+)?\b|\b(?:inf|nan)\b)"
)


def _themes() -> list[TextAreaTheme]:
    out = []
    for name, base in (("tuneterm-dark", "vscode_dark"), ("tuneterm-light", "github_light")):
        styles = dict(_BUILTIN_THEMES[base].syntax_styles)
        styles[ERROR] = Style(bgcolor="#5f1f1f" if "dark" in name else "#f6c9c9")
        out.append(TextAreaTheme(name=name, syntax_styles=styles))
    return out


def toml_highlights(lines: Iterable[str]) -> dict[int, list[tuple[int, int | None, str]]]:
    """(start byte, end byte, highlight name) per line, the shape TextArea renders."""
    out: dict[int, list[tuple[int, int | None, str]]] = {}
    for row, line in enumerate(lines):
        spans: list[tuple[int, int | None, str]] = []
        raw = line.encode("utf-8")

        def byte(col: int, line: str = line) -> int:
            return len(line[:col].encode("utf-8"))

        section = _SECTION.match(line)
        rest_from = 0
        if section:
            spans.append((byte(section.start()), byte(section.end()), "toml.type"))
            rest_from = section.end()
        else:
            key = _KEY.match(line)
            if key:
                spans.append((byte(key.start(1)), byte(key.end(1)), "css.property"))
                rest_from = key.end()
        for tok in _TOKENS.finditer(line, rest_from):
            kind = tok.lastgroup or ""
            spans.append((byte(tok.start()), byte(tok.end()), kind))
        if spans:
            out[row] = spans
        del raw
    return out


class TomlArea(TextArea):
    """Edits a run config. `error_lines` get a red background."""

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        self.error_lines: set[int] = set()  # read by _build_highlight_map during __init__
        super().__init__(text, id=id, show_line_numbers=True, tab_behavior="focus", soft_wrap=False)
        for theme in _themes():
            self.register_theme(theme)

    async def _on_key(self, event: events.Key) -> None:
        # keys sent in one burst stay in order (tuneterm/tui/widgets/inputs.py)
        if not await run_own_binding(self, event):
            await super()._on_key(event)

    def use_dark(self, dark: bool) -> None:
        self.theme = "tuneterm-dark" if dark else "tuneterm-light"

    def mark_errors(self, lines: set[int]) -> None:
        if lines != self.error_lines:
            self.error_lines = lines
            self._build_highlight_map()
            self.refresh()

    def _build_highlight_map(self) -> None:
        self._line_cache.clear()
        highlights = self._highlights
        highlights.clear()
        for row, spans in toml_highlights(self.document.lines).items():
            highlights[row].extend(spans)
        for row in self.error_lines:
            highlights[row].insert(0, (0, None, ERROR))
