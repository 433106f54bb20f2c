"""Follow runs in a terminal with one progress bar each, until they end (rich, no textual)."""

from __future__ import annotations

import time
from typing import Any

from tuneterm.runs import view
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.tasks import Metric

POLL = 0.25


def watch(store: RunStore, run_ids: list[str], console: Any, quiet: bool = False) -> dict[str, str]:
    """Poll each run's events and metadata; return {run_id: final status}.

    KeyboardInterrupt propagates: the caller says how to stop the runs, which go on.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    readers = {rid: store.events(rid) for rid in run_ids}
    stats: dict[str, dict[str, str]] = {rid: {} for rid in run_ids}
    final: dict[str, str] = {}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[where]}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        tasks = {
            rid: bar.add_task(store.info(rid).name or rid, total=None, info="starting", where="")
            for rid in run_ids
        }
        while len(final) < len(run_ids):
            for rid in run_ids:
                if rid in final:
                    continue
                info = store.info(rid)
                for e in readers[rid].poll():
                    kind = e["kind"]
                    if kind == "train":
                        stats[rid]["loss"] = f"{e['loss']:.4f}"
                    elif kind == "val":
                        for metric in _shown(info):
                            if metric.name in e:
                                stats[rid][metric.name] = metric.format(e[metric.name])
                    elif quiet:
                        continue
                    elif kind == "log" and len(run_ids) == 1:
                        bar.console.print(f"[dim]{e['msg']}[/]")
                    elif kind == "error":
                        bar.console.print(f"[red]{info.name}: {e['message']}[/]")
                m = info.meta
                if m is not None:
                    text, where = progress_line(info, stats[rid])
                    bar.update(tasks[rid], total=m.total_steps or None, completed=m.step, info=text,
                               where=where)  # fmt: skip
                if not info.alive and info.status != "queued":  # a queued run starts later
                    final[rid] = info.status
            if len(final) < len(run_ids):
                time.sleep(POLL)
    return final


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
    """The val metrics a progress line shows: those the run's metric spec plots (not loss)."""
    m = info.meta
    if m is None:
        return []
    return list(m.metric_spec().plotted("acc", len(m.classes)))
