"""The detail pane contract and its registry.

A pane is one class in one module: it says which number key shows it, what data it reads
(`Need`), how to build its widgets and how to draw them from a `PaneData`. The main screen
and compare iterate over `registered_panes()`; neither knows a pane by name.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget

from tuneterm.monitor import GpuSample
from tuneterm.store import RunInfo
from tuneterm.tui.history import RunHistory
from tuneterm.tui.protocols import ChartSettings
from tuneterm.tui.reading import RunText
from tuneterm.tui.widgets.curve import Chart


class Need(enum.Flag):
    """The data a pane reads; the screen redraws a pane only when one of them changed."""

    NONE = 0
    INFO = enum.auto()  # the run's meta and label (status, metric spec, reason)
    HISTORY = enum.auto()  # the events read so far (curves, logs, test figures)
    TEXT = enum.auto()  # config TOML, resolved pipeline, engine log tail (read once per run)
    CHART = enum.auto()  # the shared chart settings: x axis, smoothing, log y
    SYSTEM = enum.auto()  # this machine's GPU samples: new every few seconds, so always drawn


@dataclass(frozen=True)
class PaneData:
    """Everything a pane may draw from, for the selected run (or none)."""

    info: RunInfo | None
    history: RunHistory | None
    text: RunText | None
    chart: ChartSettings
    chart_status: str
    gpus: Sequence[GpuSample] = ()
    nvml_problem: str = ""

    def freshness(self, needs: Need) -> tuple[object, ...] | None:
        """What the pane's drawing depends on; None when it must be drawn every time."""
        if Need.SYSTEM in needs:
            return None
        key: list[object] = [self.info.id if self.info else ""]
        if Need.INFO in needs:
            key.append(self.info.status if self.info else "")
        if Need.HISTORY in needs:
            key.append(self.history.version if self.history else -1)
        if Need.TEXT in needs:
            key.append(self.text is not None)
        if Need.CHART in needs:
            key.append(self.chart_status)
        return tuple(key)


@dataclass(frozen=True)
class ComparedRun:
    """One run of the compare screen: its colour is kept while it is marked."""

    info: RunInfo
    history: RunHistory | None  # None until its first events are read
    colour: str

    @property
    def name(self) -> str:
        return self.info.name or self.info.id


class Pane(ABC):
    """One tab of a run's detail. Subclass, set the class variables, register it."""

    id: ClassVar[str]  # the tab's id is `pane-<id>`; the binding's `pane.<id>`
    key: ClassVar[str]  # the number key that shows it
    label: ClassVar[str]
    needs: ClassVar[Need] = Need.INFO | Need.HISTORY
    compares: ClassVar[bool] = False  # it draws a chart of several runs on the compare screen

    @abstractmethod
    def compose(self) -> ComposeResult:
        """The pane's widgets, built once with the screen."""

    @abstractmethod
    def draw(self, root: Widget, data: PaneData) -> None:
        """Show `data` in the widgets `compose` made (query them from `root`)."""

    def compare_chart(self, runs: Sequence[ComparedRun], chart: ChartSettings) -> Chart:
        """The chart of `runs` overlaid, for a pane that `compares`."""
        raise NotImplementedError(f"pane {self.id!r} draws no compare chart")

    @classmethod
    def binding(cls) -> Binding:
        return Binding(
            cls.key,
            f"pane('{cls.id}')",
            f"Show {cls.label}",
            id=f"pane.{cls.id}",
            show=False,
            tooltip=f"Show the {cls.label} pane of the selected run",
        )


_PANES: dict[str, type[Pane]] = {}
P = TypeVar("P", bound=type[Pane])


def register_pane(cls: P) -> P:
    """Add a pane (usable as a class decorator). Its id and key must be new."""
    if not cls.id:
        raise ValueError(f"pane {cls.__name__}: id must not be empty")
    if not (len(cls.key) == 1 and cls.key.isdigit()):  # the letters are the screen's own keys
        raise ValueError(f"pane {cls.id!r}: key {cls.key!r} must be one digit, 0 to 9")
    if cls.id in _PANES:
        raise ValueError(f"pane id {cls.id!r} is taken by {_PANES[cls.id].__name__}")
    taken = {p.key: p for p in _PANES.values()}
    if cls.key in taken:
        raise ValueError(f"pane key {cls.key!r} is taken by pane {taken[cls.key].id!r}")
    _PANES[cls.id] = cls
    return cls


def unregister_pane(pane_id: str) -> None:
    """Remove a pane (tests add toy panes and take them away again)."""
    _PANES.pop(pane_id, None)


def registered_panes() -> list[type[Pane]]:
    """The panes in the order of their keys, 1 to 9 then 0, as the tabs show them."""
    return sorted(_PANES.values(), key=lambda p: (p.key == "0", p.key))
