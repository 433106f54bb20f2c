"""The Log pane: the run's log events as they arrive, or the tail of engine.log for a run
whose events hold no log lines. Long lines wrap at the pane's width: nothing is cut."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import RichLog

from tuneterm.tui.history import RunHistory
from tuneterm.tui.panes.base import Need, Pane, PaneData, register_pane


@register_pane
class LogPane(Pane):
    id = "log"
    key = "5"
    label = "Log"
    needs = Need.INFO | Need.HISTORY | Need.TEXT

    def __init__(self) -> None:
        # (run id, its log lines written so far, whether engine.log's tail is written)
        self._shown: tuple[str, int, bool] = ("", 0, False)

    def compose(self) -> ComposeResult:
        yield RichLog(
            id="log-view", max_lines=2000, min_width=20, wrap=True, markup=False, highlight=False
        )

    def draw(self, root: Widget, data: PaneData) -> None:
        log = root.query_one("#log-view", RichLog)
        run_id = data.info.id if data.info else ""
        history = data.history
        shown_id, shown, tail = self._shown
        total = history.log_total if history else 0
        caught_up = tail and history is not None and bool(history.logs)  # they replace the tail
        if shown_id != run_id or total < shown or caught_up:  # or another run, or rewritten
            log.clear()
            shown, tail = 0, False
        if not tail and shown == 0:  # the run's text may arrive after its first draw
            tail = self._write_tail(log, data)
        if history is not None and total > shown:
            self._write_new(log, history, total - shown)
        self._shown = (run_id, total, tail)

    def _write_tail(self, log: RichLog, data: PaneData) -> bool:
        if data.history is not None and data.history.logs:
            return False
        if data.text is None or not data.text.log_tail:
            return False
        log.write(Text("── engine.log (tail) ──", style="dim"))
        for line in data.text.log_tail.splitlines():
            log.write(Text(line))  # as written, never markup
        return True

    def _write_new(self, log: RichLog, history: RunHistory, count: int) -> None:
        for line in list(history.logs)[-min(count, len(history.logs)) :]:
            stamp = time.strftime("%H:%M:%S", time.localtime(line.t))
            log.write(Text(f"{stamp} {line.level:>7} {line.msg}"))
