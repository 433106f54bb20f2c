"""The tuneterm TUI: a Textual app over the run store.

The app owns what screens share: the store, the histories built from events, the marked
runs and their colours, chart settings and the latest GPU sample. Worker threads read the
store and NVML and post messages; only message handlers change that state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from tuneterm import monitor
from tuneterm.health import Alert
from tuneterm.health.episodes import AlertBook
from tuneterm.health.notify import load_notify
from tuneterm.health.watch import Watcher
from tuneterm.sources import sourced_store
from tuneterm.store import RunStore
from tuneterm.tui.history import X_AXES, RunHistory, XAxis
from tuneterm.tui.messages import EventsArrived, GpuSampled, HistoryChanged
from tuneterm.tui.panes import registered_panes
from tuneterm.tui.protocols import TuneTermHost
from tuneterm.tui.reading import ConfigCache, EventPoller, RunLister
from tuneterm.tui.settings import BUILTIN_THEMES_DIR, Settings, load_settings, save_theme
from tuneterm.tui.themes import load_themes
from tuneterm.tui.widgets.curve import PALETTE

SMOOTHING: tuple[float, ...] = (0.0, 0.6, 0.9, 0.97)
DEFAULT_THEME = "tuneterm-dark"


class TuneTermApp(App[int]):
    CSS_PATH = "tuneterm.tcss"  # beside this module, inside the package
    TITLE = "tuneterm"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit tuneterm (runs keep training)"),
        Binding(
            "question_mark",
            "help",
            "Help",
            id="app.help",
            key_display="?",
            tooltip="Show every key of this screen, with its binding id for keymap.toml",
        ),
        Binding(
            "T",
            "next_theme",
            "Theme",
            id="app.theme",
            show=False,
            tooltip="Switch to the next colour theme (remembered in settings.toml)",
        ),
    ]

    def __init__(
        self,
        store: RunStore,
        settings: Settings | None = None,
        poll_interval: float = 0.25,
        scan_interval: float = 1.0,
        gpu_interval: float = 2.0,
    ) -> None:
        super().__init__()
        self.store = store
        self.settings = settings or load_settings()
        self.poll_interval, self.scan_interval, self.gpu_interval = (
            poll_interval,
            scan_interval,
            gpu_interval,
        )
        self.poller = EventPoller(store)
        self.lister = RunLister(store, self.poller.damaged)  # damaged events read unreadable
        self.configs = ConfigCache(store)
        self.scan_lock = threading.Lock()
        self.histories: dict[str, RunHistory] = {}
        self.selected: str | None = None
        self.marked: dict[str, str] = {}  # run id -> colour, in marking order
        self.compared: list[str] = []
        self.gpus: list[monitor.GpuSample] = []
        self.nvml_problem = ""
        self.smoothing = 1  # index into SMOOTHING
        self.x_axis: XAxis = "step"
        self.log_y = False
        self.pending_select: str | None = None  # a run just launched: select it when listed
        self.draft: tuple[str, str] | None = None  # (toml, title) kept when the editor closes
        self.theme_names: list[str] = []
        self._theme_ready = False
        self.first_paint: float | None = None
        self.started = time.perf_counter()
        self.health = Watcher(store)  # used by the scan worker only, under scan_lock
        self.alerts: dict[str, list[Alert]] = {}  # run id -> its open alerts (last scan)
        self.alert_book = AlertBook()  # which alert episodes were rung
        self._alerts_seen = False  # the first scan's open alerts are shown, not rung
        self.notify_settings = load_notify()

    # -- start-up ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from tuneterm.tui.screens.main import MainScreen

        themes, problems = load_themes(BUILTIN_THEMES_DIR, self.settings.themes_dir)
        for theme in themes:
            self.register_theme(theme)
            self.theme_names.append(theme.name)
        wanted = self.settings.theme
        if wanted not in self.available_themes:
            if wanted != DEFAULT_THEME:
                problems.append(f"theme {wanted!r} not found; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted
        self._theme_ready = True
        problems += self.settings.problems + self._apply_keymap()
        for problem in problems:
            self.notify(problem, title="settings", severity="warning", timeout=8)
        self.push_screen(MainScreen())
        self.watch_events()
        self.sample_gpus()
        self.set_interval(self.gpu_interval, self.sample_gpus)

    def _apply_keymap(self) -> list[str]:
        from tuneterm.tui.screens.compare import CompareScreen
        from tuneterm.tui.screens.dialogs import ConfirmScreen, HelpScreen, PromptScreen
        from tuneterm.tui.screens.editor import EditorScreen
        from tuneterm.tui.screens.group import GroupScreen
        from tuneterm.tui.screens.main import MainScreen
        from tuneterm.tui.screens.queue import QueueScreen
        from tuneterm.tui.screens.runactions import RunActions
        from tuneterm.tui.widgets.runtable import RunTable

        screens = (MainScreen, RunActions, EditorScreen, CompareScreen, QueueScreen, GroupScreen)
        dialogs = (ConfirmScreen, PromptScreen, HelpScreen)
        owners = (self, *screens, *dialogs, RunTable)
        bindings = [b for owner in owners for b in owner.BINDINGS]
        bindings += [pane.binding() for pane in registered_panes()]  # bound per main screen
        known = {b.id for b in bindings if isinstance(b, Binding) and b.id}
        unknown = sorted(set(self.settings.keymap) - known)
        keymap = {k: v for k, v in self.settings.keymap.items() if k in known}
        if keymap:
            self.set_keymap(keymap)
        if unknown:
            return [f"keymap.toml: unknown binding ids {', '.join(unknown)} (press ? for the ids)"]
        return []

    # -- events of the watched runs ------------------------------------------------------------
    def watched(self) -> list[str]:
        ids = dict.fromkeys(
            [*([self.selected] if self.selected else []), *self.marked, *self.compared]
        )
        return list(ids)

    def history(self, run_id: str) -> RunHistory:
        if run_id not in self.histories:
            self.histories[run_id] = RunHistory()
        return self.histories[run_id]

    @work(thread=True, exclusive=True, group="events", exit_on_error=False)
    def watch_events(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            batches = self.poller.poll(self.watched())
            if batches and not worker.is_cancelled:
                self.post_message(EventsArrived(batches))
            time.sleep(self.poll_interval)

    @on(EventsArrived)
    def events_arrived(self, message: EventsArrived) -> None:
        for run_id, events in message.batches.items():
            self.history(run_id).add(events)
        self._tell_screen(HistoryChanged(set(message.batches)))

    def _tell_screen(self, message: HistoryChanged) -> None:
        if self.screen_stack:  # empty while the app shuts down
            self.screen.post_message(message)

    def forget_run(self, run_id: str) -> None:
        """A deleted run: drop its history, cursor and marks."""
        self.histories.pop(run_id, None)
        self.poller.forget(run_id)
        self.marked.pop(run_id, None)
        if run_id in self.compared:
            self.compared.remove(run_id)

    # -- GPUs ----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False)
    def sample_gpus(self) -> None:
        samples = monitor.gpu_samples()
        self.post_message(GpuSampled(samples, "" if samples else monitor.nvml_status()))

    @on(GpuSampled)
    def gpu_sampled(self, message: GpuSampled) -> None:
        self.gpus, self.nvml_problem = message.samples, message.nvml_problem
        self._tell_screen(HistoryChanged(set(), gpu=True))

    # -- health alerts ---------------------------------------------------------------------------
    def take_alerts(
        self,
        alerts: dict[str, list[Alert]],
        names: dict[str, str],
        attempts: dict[str, int] | None = None,
        now: float | None = None,
    ) -> None:
        """The open alerts of the last scan (`names`: every run scanned). An alert episode is
        told once (`AlertBook`): a toast, the terminal bell, and an OSC 9 desktop notification
        ([notify] bell / desktop in settings.toml). Those open when the TUI started are shown
        in the list, not rung."""
        self.alerts = alerts
        now = time.time() if now is None else now
        first, self._alerts_seen = not self._alerts_seen, True
        for rid in {*names, *alerts}:
            rung = self.alert_book.ring(rid, (attempts or {}).get(rid, 0), alerts.get(rid, []), now)
            if first:
                continue
            for a in rung:
                self._ring(names.get(rid, rid), a)

    def _ring(self, name: str, a: Alert) -> None:
        self.notify(
            f"{a.message}\n{a.hint}",
            title=f"{name}: {a.kind}",
            severity="error" if a.severity == "error" else "warning",
        )
        if self.notify_settings.bell:
            self.bell()
        if self.notify_settings.desktop:
            self.desktop_notification(f"tuneterm: {name}: {a.kind}: {a.message}")

    def alert_counts(self) -> dict[str, int]:
        return {rid: len(found) for rid, found in self.alerts.items()}

    def desktop_notification(self, text: str) -> None:
        """OSC 9: iTerm2, kitty, WezTerm, Windows Terminal and others (through tmux with
        `allow-passthrough`) show it as a desktop notification; other terminals ignore it."""
        driver = self._driver
        if driver is None or self.is_headless:
            return
        safe = "".join(ch for ch in text if ch.isprintable())[:200]
        driver.write(f"\x1b]9;{safe}\x07")

    # -- marks and colours ---------------------------------------------------------------------
    def toggle_mark(self, run_id: str) -> bool:
        if run_id in self.marked:
            del self.marked[run_id]
            return False
        used = set(self.marked.values())
        free = [c for c in PALETTE if c not in used]
        self.marked[run_id] = free[0] if free else PALETTE[len(self.marked) % len(PALETTE)]
        return True

    def colour(self, run_id: str, index: int = 0) -> str:
        return self.marked.get(run_id) or PALETTE[index % len(PALETTE)]

    # -- chart settings (shared by the detail panes and compare) -------------------------------
    @property
    def smoothing_weight(self) -> float:
        return SMOOTHING[self.smoothing]

    def cycle_smoothing(self) -> None:
        self.smoothing = (self.smoothing + 1) % len(SMOOTHING)

    def cycle_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]

    def chart_status(self) -> str:
        return (
            f"smooth {self.smoothing_weight:g} (z)  x: {self.x_axis} (x)  "
            f"log-y {'on' if self.log_y else 'off'} (g)"
        )

    # -- themes --------------------------------------------------------------------------------
    def action_next_theme(self) -> None:
        # tuneterm's own (and the user's) first, then every theme Textual has: the one picked
        # in the command palette is in the cycle, so T goes on from it.
        names = list(dict.fromkeys([*self.theme_names, *sorted(self.available_themes)]))
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def watch_theme(self, theme: str) -> None:
        if self._theme_ready:  # not the theme set from settings at start-up
            self._remember_theme(theme)

    @work(thread=True, exclusive=True, group="settings", exit_on_error=False)
    def _remember_theme(self, theme: str) -> None:
        problem = save_theme(theme)
        if problem:
            self.call_from_thread(self.notify, problem, severity="warning")

    # -- help and palette ----------------------------------------------------------------------
    def key_rows(self, screen: Screen[object]) -> list[tuple[str, str, str]]:
        """(keys, description, binding id) for every action reachable on `screen`."""
        by_id: dict[str, tuple[list[str], str]] = {}
        # The screen's own actions first, then the app's, then widget keys (scrolling, focus).
        rank = {id(screen): 0, id(self): 1}

        def order(item: tuple[str, Any]) -> int:
            binding = item[1].binding
            if (binding.id or binding.action).startswith(("app.focus", "screen.")):
                return 2
            return rank.get(id(item[1].node), 2)

        ordered = sorted(screen.active_bindings.items(), key=order)
        for key, active in ordered:
            b = active.binding
            if not b.description:
                continue
            ident = b.id or b.action
            keys, _ = by_id.setdefault(ident, ([], b.description))
            keys.append(self.get_key_display(b) if b.key == key else key)
        rows = [
            (" ".join(dict.fromkeys(keys)), desc, ident) for ident, (keys, desc) in by_id.items()
        ]
        return rows

    def action_help(self) -> None:
        from tuneterm.tui.screens.dialogs import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.key_rows(self.screen), type(self.screen).__name__))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not b.description or b.id in seen or b.action in ("command_palette",):
                continue
            seen.add(b.id or b.action)
            yield SystemCommand(
                b.description,
                f"key {self.get_key_display(b) if b.key == key else key}  ({b.id or b.action})",
                partial(self.call_later, self.run_action, b.action, active.node),
            )


def run_app(runs_dir: str | None) -> int:
    """Open the TUI over the run store at `runs_dir` (or $TUNETERM_RUNS, or ./runs)."""
    app = TuneTermApp(sourced_store(runs_dir))
    app.run()
    return app.return_code or 0


# mypy checks here that the app holds all that the screens read through `TuneTermHost`.
HOST: type[TuneTermHost] = TuneTermApp
