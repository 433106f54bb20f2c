"""The run queue: queued runs in start order, live; move them, cancel them, start the
scheduler. Every change goes through tuneterm.runs.runqueue, as the CLI's `queue` commands do."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tuneterm.runs import runqueue
from tuneterm.store import RunInfo
from tuneterm.tui.protocols import Hosted
from tuneterm.tui.rows import STATUS_STYLE, duration
from tuneterm.tui.screens import back_binding


@dataclass
class QueueRead(Message):
    """The queue and the runs it started that are still live, freshly read."""

    queued: list[RunInfo]
    running: list[RunInfo]
    scheduler: runqueue.SchedulerState | None
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, QueueRead)


@dataclass
class QueueChanged(Message):
    """A queue action ended; `error` is '' on success. `select` = run to keep the cursor on."""

    what: str
    error: str = ""
    select: str = ""


class QueueScreen(Hosted, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("escape,Q", "queue"),
        Binding(
            "K,shift+up",
            "move(-1)",
            "Move up",
            id="queue.up",
            tooltip="Move the selected queued run one place earlier",
        ),
        Binding(
            "J,shift+down",
            "move(1)",
            "Move down",
            id="queue.down",
            tooltip="Move the selected queued run one place later",
        ),
        Binding(
            "t,home",
            "move_to(1)",
            "To the front",
            id="queue.top",
            show=False,
            tooltip="Move the selected queued run to the front",
        ),
        Binding(
            "x,delete",
            "cancel",
            "Cancel run",
            id="queue.cancel",
            tooltip="Take the selected run off the queue",
        ),
        Binding(
            "s",
            "start",
            "Start scheduler",
            id="queue.start",
            tooltip="Start the scheduler that launches the queued runs, unless one runs",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[RunInfo] = []
        self.running: list[RunInfo] = []
        self.state: runqueue.SchedulerState | None = None
        self._select = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="queue-head")
        yield DataTable(id="queue-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="queue-running")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#queue-table", DataTable)
        for label in ("#", "run", "model", "data", "waiting", "id"):
            table.add_column(label, key=label)
        table.focus()
        self.read()
        self.set_interval(self.host.scan_interval, self.read)

    @work(thread=True, exclusive=True, group="queue", exit_on_error=False)
    def read(self) -> None:
        store = self.host.store
        try:
            runs = store.list()
            waiting = runqueue.number_queue(runs)
            live = [r for r in runs if r.alive and r.meta is not None and r.meta.gpus]
            self.post_message(QueueRead(waiting, live, runqueue.scheduler(store)))
        except Exception as exc:  # a damaged queue folder must not end the app
            self.post_message(QueueRead([], [], None, str(exc)))

    @on(QueueRead)
    def queue_read(self, message: QueueRead) -> None:
        self.queued, self.running, self.state = message.queued, message.running, message.scheduler
        head = Text(" queue  ", style="bold")
        if message.error:
            head.append(message.error, style="red")
        elif self.state is None:
            head.append("scheduler not running — press s to start it", style="yellow")
        else:
            gpus = self.state.gpus
            devices = "(detecting GPUs)" if gpus is None else ",".join(gpus) or "CPU slots"
            head.append(f"scheduler pid {self.state.pid} on {devices}", style="green")
        head.append(f"   {len(self.queued)} queued, {len(self.running)} running", style="dim")
        self.query_one("#queue-head", Static).update(head)
        self._fill()

    def _fill(self) -> None:
        table = self.query_one("#queue-table", DataTable)
        keep = self._select or self.selected_id()
        table.clear()
        now = time.time()
        for r in self.queued:
            m = r.meta
            assert m is not None
            table.add_row(
                str(r.queue_position),
                Text(r.name or r.id, style=STATUS_STYLE["queued"]),
                m.model,
                m.dataset,
                duration(now - m.created),
                Text(r.id, style="dim"),
                key=r.id,
            )
        ids = [r.id for r in self.queued]
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)
        self._select = ""
        running = Text()
        for r in self.running:
            running.append(f" running {r.name or r.id} on {r.meta.gpus if r.meta else '?'}\n")
        if not self.queued:
            running.append(" the queue is empty: tuneterm run CONFIG --queue, or tuneterm sweep\n",
                           style="dim")  # fmt: skip
        self.query_one("#queue-running", Static).update(running)

    def selected_id(self) -> str:
        table = self.query_one("#queue-table", DataTable)
        if not self.queued or table.cursor_row >= len(self.queued):
            return ""
        return self.queued[table.cursor_row].id

    # -- actions -------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.dismiss(None)

    def action_move(self, delta: int) -> None:
        run_id = self.selected_id()
        if run_id:
            place = next(r.queue_position for r in self.queued if r.id == run_id)
            self.change("move", run_id, max(1, place + delta))

    def action_move_to(self, position: int) -> None:
        if run_id := self.selected_id():
            self.change("move", run_id, position)

    def action_cancel(self) -> None:
        from tuneterm.tui.screens.dialogs import ConfirmScreen

        run_id = self.selected_id()
        if not run_id:
            return
        name = next(r.name or r.id for r in self.queued if r.id == run_id)

        def answered(yes: bool | None) -> None:
            if yes:
                self.change("cancel", run_id)

        self.app.push_screen(
            ConfirmScreen(f"Cancel {name}?", "It leaves the queue with status cancelled."),
            answered,
        )

    def action_start(self) -> None:
        self.change("start", "")

    @work(thread=True, group="queue-actions", exit_on_error=False)
    def change(self, what: str, run_id: str, position: int = 0) -> None:
        store = self.host.store
        try:
            if what == "move":
                runqueue.move(store, run_id, position)
            elif what == "cancel":
                runqueue.cancel(store, run_id)
            elif what == "start":
                runqueue.start_scheduler(store)
            self.post_message(QueueChanged(what, select=run_id if what == "move" else ""))
        except Exception as exc:  # shown, never fatal
            self.post_message(QueueChanged(what, str(exc) or type(exc).__name__))

    @on(QueueChanged)
    def queue_changed(self, message: QueueChanged) -> None:
        if message.error:
            self.notify(message.error, title=f"queue {message.what} failed", severity="error")
        elif message.what != "move":
            self.notify({"cancel": "cancelled", "start": "scheduler running"}[message.what],
                        timeout=2)  # fmt: skip
        self._select = message.select
        self.read()
