"""Follow runs in a terminal with one progress bar each, until they end (rich, no textual)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tuneterm.runs import view
from tuneterm.store.events import Event, EventReader
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.store.text import printable
from tuneterm.tasks import Metric, metric_spec_of_run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID

POLL = 0.25


@dataclass
class _Followed:
    """One run being followed: its event reader, its progress bar, and what the bar shows."""

    reader: EventReader
    bar: TaskID
    stats: dict[str, str] = field(default_factory=dict)  # metric name -> formatted value


def watch(store: RunStore, run_ids: list[str], console: Any, quiet: bool = False) -> dict[str, str]:
    """Poll each run's events and metadata; return {run_id: final status}.

    KeyboardInterrupt propagates: the caller says how to stop the runs, which go on.
    """
    final: dict[str, str] = {}
    with _progress(console, quiet) as progress:
        runs = {
            rid: _Followed(
                store.events(rid),
                progress.add_task(
                    _plain(store.info(rid).name or rid), total=None, info="starting", where=""
                ),
            )
            for rid in dict.fromkeys(run_ids)  # each run once, in the order given
        }
        while True:
            for rid, run in runs.items():
                if rid not in final:
                    status = _follow_once(store.info(rid), run, progress, quiet, len(runs) == 1)
                    if status:
                        final[rid] = status
            if len(final) == len(runs):
                return final
            time.sleep(POLL)


WIDE = 120  # narrower: each run's name on a line of its own, above its bar and figures


def _progress(console: Any, quiet: bool) -> Progress:
    """One bar per run. At a narrow terminal the name takes a line of its own, whole, and the
    bar gives way to the figures beside it."""
    # rich is imported here, not at the top: only following a run draws bars.
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    figures = (
        TextColumn("{task.fields[where]}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    if console.width >= WIDE:
        name = TextColumn("[bold]{task.description}")
        return Progress(name, BarColumn(), *figures, console=console, disable=quiet)

    class NamedAbove(Progress):
        def get_renderables(self) -> Iterator[RenderableType]:
            for task in self.tasks:
                yield Text.from_markup(task.description, style="bold")
                yield self.make_tasks_table([task])

    return NamedAbove(
        BarColumn(bar_width=None), *figures, console=console, disable=quiet, expand=True
    )


def _follow_once(
    info: RunInfo, run: _Followed, progress: Progress, quiet: bool, alone: bool
) -> str:
    """Read a run's new events and redraw its bar; its final status once it has ended, else ""."""
    for event in run.reader.poll():
        _read_event(event, info, run.stats, progress.console, quiet, alone)
    m = info.meta
    if m is not None:
        text, where = progress_line(info, run.stats)
        progress.update(
            run.bar, total=m.total_steps or None, completed=m.step, info=_plain(text), where=where
        )
    if not info.alive and info.status != "queued":  # a queued run starts later
        return info.status
    return ""


def _read_event(
    e: Event,
    info: RunInfo,
    stats: dict[str, str],
    console: Console,
    quiet: bool,
    alone: bool,
) -> None:
    """Metrics go to the run's bar; its log lines (when it is the only run followed) and its
    errors are printed above the bars, unless quiet."""
    kind = e["kind"]
    if kind == "train":
        stats["loss"] = f"{e['loss']:.4f}"
    elif kind == "val":
        stats.update({m.name: m.format(e[m.name]) for m in _shown(info) if m.name in e})
    elif quiet:
        return
    elif kind == "log" and alone:  # text as printed, never markup
        console.print(Text(printable(str(e.get("msg", ""))), style="dim"))
    elif kind == "error":
        console.print(Text(printable(f"{info.name}: {e.get('message', '')}"), style="red"))


def _plain(text: str) -> str:
    """A run's name in a markup column (the task description): no markup, no control codes."""
    from rich.markup import escape

    return escape(printable(text, tabs=False))


def progress_line(info: RunInfo, stats: dict[str, str]) -> tuple[str, str]:
    """The follow line's text (status, epoch, figures) and its count: `step/total`, or
    `step N` for a run of unknown length (a script); none beside an epoch count."""
    m = info.meta
    assert m is not None
    text = f"{info.status:<9}" + (f" epoch {m.epoch}/{m.epochs}" if m.epochs else "")
    text += "".join(f"  {k} {v}" for k, v in stats.items())
    if m.total_steps:
        return text, f"{m.step}/{m.total_steps}"
    return text, "" if m.epochs else view.position(info)


def _shown(info: RunInfo) -> list[Metric]:
    """The val metrics a progress line shows: those the run's metric spec plots beside
    accuracy, and the one that picks its best (a script's `val_err`), whichever pane has it."""
    m = info.meta
    if m is None:
        return []
    spec = metric_spec_of_run(m)
    shown = list(spec.plotted("acc", len(m.classes)))
    best = spec.metric(spec.best) if spec.best else None
    if best is not None and best.name not in {s.name for s in shown}:
        shown.append(best)
    return shown
