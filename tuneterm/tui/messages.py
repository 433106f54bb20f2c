"""Messages that worker threads post to the UI thread. Workers never touch widgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from tuneterm.config import ConfigIssue
from tuneterm.monitor import GpuSample
from tuneterm.store import RunInfo
from tuneterm.tui.reading import RunText


@dataclass
class RunsScanned(Message):
    """The whole run list, freshly read; a newer scan supersedes an unhandled one."""

    runs: list[RunInfo]
    configs: dict[str, dict[str, Any]] | None = None
    took: float = 0.0
    alerts: dict[str, list[Any]] = field(default_factory=dict)  # run id -> open health alerts

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsScanned)


@dataclass
class EventsArrived(Message):
    """New events per run id, in order."""

    batches: dict[str, list[dict[str, Any]]]


@dataclass
class HistoryChanged(Message):
    """Sent to the active screen after the app folded new events into its histories."""

    run_ids: set[str]
    gpu: bool = False


@dataclass
class GpuSampled(Message):
    samples: list[GpuSample]
    nvml_problem: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GpuSampled)


@dataclass
class RunTextRead(Message):
    text: RunText


@dataclass
class ActionDone(Message):
    """A run action (stop, kill, resume, delete, label) ended; `error` is '' on success."""

    action: str
    run_id: str
    error: str = ""


@dataclass
class LaunchDone(Message):
    """A launch from the editor ended: a run id, or the issues / error that stopped it."""

    run_id: str = ""
    issues: list[ConfigIssue] = field(default_factory=list)
    error: str = ""
