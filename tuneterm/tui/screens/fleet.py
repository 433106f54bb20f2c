"""The fleet view (`tuneterm tui --host ...`): every host's runs in one list, with a HOST
column; the hosts pane with each host's state and GPUs; the selected run's latest events;
stop, kill, resume and delete acting on the run's own host.

Each host has its own feed thread (tuneterm.hosts.feed) and its own GPU sampler; they post
messages and never touch widgets, so a slow or silent host never holds the screen or the
other hosts. `/host:gpu2 loss` filters on the host and on any other text.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from tuneterm.hosts import Fleet, HostError, HostInfo, HostSpec
from tuneterm.hosts.feed import HostFeed, Rows
from tuneterm.hosts.fleet import host_info
from tuneterm.hosts.follow import follow_events

COLUMNS = ("HOST", "ID", "NAME", "STATUS", "STEP", "LOSS", "BEST")
GPU_EVERY = 5.0  # seconds between two GPU samples of a host
ACTIONS = {"stop": ["stop", "--wait", "0"], "kill": ["kill", "--wait", "0"],
           "resume": ["resume", "--detach"], "delete": ["rm", "--force"]}  # fmt: skip


@dataclass
class HostRows(Message):
    host: str
    rows: Rows

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostRows) and message.host == self.host


@dataclass
class HostDown(Message):
    host: str
    text: str


@dataclass
class HostSampled(Message):
    info: HostInfo


@dataclass
class RunEvent(Message):
    key: str  # host:id
    event: dict[str, Any]


def parse_fleet_filter(text: str) -> tuple[set[str], list[str]]:
    """`host:gpu2 host:gpu3 loss` -> ({gpu2, gpu3}, [loss])."""
    hosts, words = set(), []
    for word in text.split():
        if word.startswith("host:") and word[5:]:
            hosts.add(word[5:])
        else:
            words.append(word.lower())
    return hosts, words


def cells(host: str, row: dict[str, Any]) -> tuple[str, ...]:
    best = row.get("best_metric") or {}
    loss = row.get("last_loss")
    step = row.get("step")
    return (
        host,
        str(row.get("id", "")),
        str(row.get("name", "")),
        str(row.get("status", "")),
        "-" if step is None else str(step),
        f"{loss:.4g}" if isinstance(loss, int | float) else "-",
        str(best.get("text", "-")) if isinstance(best, dict) else "-",
    )


class FleetScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="fleet.filter",
                tooltip="Filter runs: host:NAME picks a host, other words match any column"),
        Binding("s", "act('stop')", "Stop", id="fleet.stop",
                tooltip="Stop the selected run on its own host (checkpoint first)"),
        Binding("K", "act('kill')", "Kill", id="fleet.kill",
                tooltip="Kill the selected run on its own host (no checkpoint)"),
        Binding("r", "act('resume')", "Resume", id="fleet.resume",
                tooltip="Resume the selected run on its own host"),
        Binding("D", "act('delete')", "Delete", id="fleet.delete",
                tooltip="Delete the selected run's folder on its own host"),
        Binding("escape", "clear_filter", "Clear filter", id="fleet.clear", show=False,
                tooltip="Clear the filter"),
    ]  # fmt: skip

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        self.rows: dict[str, Rows] = {}  # host -> its runs, as its feed last said
        self.infos: dict[str, HostInfo] = {}
        self.down: dict[str, str] = {}  # host -> "unreachable since HH:MM ..."
        self.events: dict[str, list[dict[str, Any]]] = {}  # host:id -> its latest events
        self.filter_text = ""
        self.feeds: list[HostFeed] = []
        self._following = ""
        self._follower: subprocess.Popen[str] | None = None
        self._leaving = threading.Event()
        self._samplers: list[subprocess.Popen[str]] = []
        self.first_paint = 0.0  # monotonic time the list first held every reachable host
        self.answered: set[str] = set()  # hosts whose feed gave a list, or said it is down

    def compose(self) -> ComposeResult:
        yield Static("", id="fleet-hosts")
        yield DataTable(id="fleet-runs", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="host:NAME words", id="fleet-filter", classes="hidden")
        yield Static("", id="fleet-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        for t in self.fleet.transports.values():
            feed = HostFeed(t, self._feed_rows, self._feed_down)
            self.feeds.append(feed)
            threading.Thread(target=feed.run, name=f"feed-{feed.name}", daemon=True).start()
            self._thread(self.sample, t.spec.name)
        self.draw_hosts()

    def on_unmount(self) -> None:
        self._leaving.set()
        for feed in self.feeds:
            feed.stop()
        self._end_follower()
        for proc in self._samplers:
            if proc.poll() is None:
                proc.kill()

    def _end_follower(self) -> None:
        proc, self._follower = self._follower, None
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _started(self, proc: subprocess.Popen[str]) -> None:
        self._follower = proc
        if self._leaving.is_set():
            proc.kill()

    # -- from the threads ---------------------------------------------------------------
    def _feed_rows(self, host: str, rows: Rows) -> None:
        self.post_message(HostRows(host, rows))

    def _feed_down(self, host: str, text: str) -> None:
        self.post_message(HostDown(host, text))

    @staticmethod
    def _thread(target: Any, *args: str) -> None:
        """A loop that lives as long as a link: a daemon thread, ended by killing its ssh
        process (on_unmount), never one the app must wait for when it closes."""
        threading.Thread(target=target, args=args, daemon=True).start()

    def sample(self, host: str) -> None:
        """One host's GPUs every GPU_EVERY seconds, from one `gpus --watch` there (one
        process for the view's life, not one a sample), in a thread of its own."""
        t = self.fleet.transports[host]
        while not self._leaving.is_set():
            try:
                args = ["gpus", "--json", "--watch", f"{GPU_EVERY:g}"]
                proc = t.popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                self._samplers.append(proc)
                if self._leaving.is_set():  # the view closed while this one started
                    proc.kill()
                assert proc.stdout is not None
                for line in proc.stdout:
                    with contextlib.suppress(ValueError, AttributeError):
                        self.post_message(HostSampled(host_info(host, json.loads(line))))
                proc.wait()
            except HostError as exc:
                text = str(exc).removeprefix(f"host {host}: ")
                self.post_message(HostSampled(HostInfo(host, error=text)))
            self._leaving.wait(GPU_EVERY)

    # -- state changes ------------------------------------------------------------------
    @on(HostRows)
    def host_rows(self, message: HostRows) -> None:
        self.rows[message.host] = message.rows
        if self.down.pop(message.host, None) and self._following.startswith(f"{message.host}:"):
            self._following = ""  # follow the selected run again, from its last seq
            self.draw_hosts()
        self.draw_runs()
        self._answered(message.host)

    def _answered(self, host: str) -> None:
        self.answered.add(host)
        if not self.first_paint and self.answered >= set(self.fleet.names):
            self.first_paint = time.monotonic()

    @on(HostDown)
    def host_down(self, message: HostDown) -> None:
        self.down[message.host] = message.text
        self.draw_hosts()
        self._answered(message.host)

    @on(HostSampled)
    def host_sampled(self, message: HostSampled) -> None:
        self.infos[message.info.host] = message.info
        if message.info.error:
            self.down[message.info.host] = message.info.error
        self.draw_hosts()

    @on(RunEvent)
    def run_event(self, message: RunEvent) -> None:
        kept = self.events.setdefault(message.key, [])
        kept.append(message.event)
        del kept[:-8]
        if message.key == self.selected():
            self.draw_detail()

    # -- drawing ------------------------------------------------------------------------
    def shown_runs(self) -> list[tuple[str, dict[str, Any]]]:
        hosts, words = parse_fleet_filter(self.filter_text)
        out = []
        for host in self.fleet.names:
            if hosts and host not in hosts:
                continue
            for row in self.rows.get(host, []):
                text = " ".join(cells(host, row)).lower()
                if all(w in text for w in words):
                    out.append((host, row))
        return out

    def draw_runs(self) -> None:
        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        for host, row in self.shown_runs():
            table.add_row(*cells(host, row), key=f"{host}:{row.get('id')}")
        if keep:
            with contextlib.suppress(Exception):  # the run left the view
                table.move_cursor(row=table.get_row_index(keep))
        self.draw_hosts()
        self.draw_detail()

    def draw_hosts(self) -> None:
        text = Text()
        for host in self.fleet.names:
            if text:
                text.append("\n")
            text.append(f"{host:10}", style="bold")
            if host in self.down:
                text.append(f" {self.down[host]}", style="red")
                continue
            info = self.infos.get(host)
            live = sum(r.get("status") == "running" for r in self.rows.get(host, []))
            text.append(f" {live} live")
            if info is None:
                continue
            text.append(f"  tuneterm {info.version}")
            for g in info.gpus:
                used, total = g.get("mem_used", 0) / 2**30, g.get("mem_total", 0) / 2**30
                text.append(f"  gpu{g.get('index')} {g.get('util', 0):.0f}% "
                            f"{used:.0f}/{total:.0f}G")  # fmt: skip
            if not info.gpus:
                text.append("  no GPUs", style="dim")
        self.query_one("#fleet-hosts", Static).update(text)

    def selected(self) -> str:
        table = self.query_one(DataTable)
        if not table.row_count:
            return ""
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return ""
        return str(key.value or "")

    def draw_detail(self) -> None:
        key = self.selected()
        if key and key != self._following:
            self._following = key
            self._end_follower()
            host, _, run_id = key.partition(":")
            self._thread(self.follow, host, run_id)
        lines = [f"{key}"] if key else ["no run selected"]
        for e in self.events.get(key, [])[-5:]:
            fields = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("t", "kind", "seq"))
            lines.append(f"  {e.get('seq')} {e.get('kind')} {fields}"[:200])
        self.query_one("#fleet-detail", Static).update("\n".join(lines))

    def follow(self, host: str, run_id: str) -> None:
        """The selected run's events as they come (resumed from its cursor after a drop)."""
        key = f"{host}:{run_id}"
        seen = self.events.get(key, [])
        after = seen[-1]["seq"] if seen else -1
        try:

            def emit(event: dict[str, Any]) -> None:
                self.post_message(RunEvent(key, event))

            follow_events(self.fleet.transports[host], run_id, emit, after=after,
                          on_start=self._started)  # fmt: skip
        except HostError as exc:
            self.post_message(HostDown(host, str(exc).removeprefix(f"host {host}: ")))

    @on(DataTable.RowHighlighted)
    def row_highlighted(self) -> None:
        self.draw_detail()

    # -- actions ------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.remove_class("hidden")
        box.focus()

    @on(Input.Submitted, "#fleet-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value
        self.query_one(DataTable).focus()
        self.draw_runs()

    def action_clear_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.value, self.filter_text = "", ""
        box.add_class("hidden")
        self.draw_runs()

    def action_act(self, what: str) -> None:
        key = self.selected()
        if key:
            self.act(what, key)

    @work(thread=True, exit_on_error=False, group="fleet-actions")
    def act(self, what: str, key: str) -> None:
        """stop / kill / resume / delete on the run's own host."""
        host, _, run_id = key.partition(":")
        try:
            reply = self.fleet.transports[host].call([*ACTIONS[what], run_id], timeout=60)
        except HostError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        said = (reply.stderr.strip() or reply.stdout.strip()).splitlines()
        text = f"{key}: {what} " + ("done" if reply.code == 0 else f"exit {reply.code}")
        text += f" ({said[-1]})" if said else ""
        self.app.call_from_thread(self.notify, text, severity="information")


class FleetApp(App[int]):
    TITLE = "tuneterm: hosts"
    CSS = """
    #fleet-hosts { height: auto; max-height: 12; border: round $primary; padding: 0 1; }
    #fleet-runs { height: 1fr; }
    #fleet-detail { height: 8; border: round $secondary; padding: 0 1; }
    .hidden { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="fleet.quit", tooltip="Quit (runs keep running)"),
    ]

    def __init__(self, hosts: list[HostSpec], screen: type[FleetScreen] = FleetScreen) -> None:
        super().__init__()
        self.fleet = Fleet(hosts)
        self.screen_type = screen

    def on_mount(self) -> None:
        self.push_screen(self.screen_type(self.fleet))


def run_fleet(hosts: list[HostSpec]) -> int:
    app = FleetApp(hosts)
    app.run()
    return app.return_code or 0
