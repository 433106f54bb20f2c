"""What the screens and panes need from the app, as protocols.

The screens read the app's shared state (the store, the histories, the marks, the chart
settings) through `TuneTermHost`, so that no screen imports `tuneterm.tui.app`: the app imports
the screens, never the other way round. Textual's own app methods (`push_screen`, `notify`,
...) stay on `self.app`.
"""

from __future__ import annotations

import threading
from typing import Protocol, cast

from textual.dom import DOMNode

from tuneterm.health import Alert
from tuneterm.health.watch import Watcher
from tuneterm.monitor import GpuSample
from tuneterm.store import RunStore
from tuneterm.tui.history import RunHistory, XAxis
from tuneterm.tui.reading import ConfigCache, RunLister


class ChartSettings(Protocol):
    """The chart settings the detail panes and compare share (z, x and g change them)."""

    @property
    def x_axis(self) -> XAxis: ...

    @property
    def log_y(self) -> bool: ...

    @property
    def smoothing_weight(self) -> float: ...


class TuneTermHost(ChartSettings, Protocol):
    """The app as the screens see it: the shared state and the few methods that change it."""

    store: RunStore
    lister: RunLister
    configs: ConfigCache
    health: Watcher
    scan_lock: threading.Lock
    scan_interval: float
    histories: dict[str, RunHistory]
    selected: str | None
    marked: dict[str, str]
    compared: list[str]
    gpus: list[GpuSample]
    nvml_problem: str
    alerts: dict[str, list[Alert]]
    pending_select: str | None
    draft: tuple[str, str] | None
    first_paint: float | None
    started: float
    x_axis: XAxis
    log_y: bool

    def cycle_smoothing(self) -> None: ...

    def cycle_x_axis(self) -> None: ...

    def chart_status(self) -> str: ...

    def toggle_mark(self, run_id: str) -> bool: ...

    def colour(self, run_id: str, index: int = 0) -> str: ...

    def forget_run(self, run_id: str) -> None: ...

    def take_alerts(
        self,
        alerts: dict[str, list[Alert]],
        names: dict[str, str],
        attempts: dict[str, int] | None = None,
        now: float | None = None,
    ) -> None: ...

    def alert_counts(self) -> dict[str, int]: ...


class Hosted:
    """Mixed into a screen: `self.host` is its app, seen as a `TuneTermHost`."""

    @property
    def host(self) -> TuneTermHost:
        # The one app that pushes these screens is TuneTermApp, which app.py checks against
        # this protocol; the cast keeps the screens from importing it.
        return cast(TuneTermHost, cast(DOMNode, self).app)
