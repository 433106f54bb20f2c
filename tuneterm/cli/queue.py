"""CLI commands of the run queue: `queue ...`, and `run --queue` / `resume --queue`.

Exit codes as in tuneterm.cli.common: 0 ok, 1 failed, 2 invalid input (nothing created),
3 the run is not in a state the action fits (e.g. cancelling a running run).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from typing import Any

from tuneterm.cli.common import EXIT_OK, RUN_HELP, AddCommand, console, out, store_of
from tuneterm.runs import launcher, report, runqueue
from tuneterm.runs.lifecycle import RunStateError
from tuneterm.store.runs import RunInfo, RunStore


def scheduler_json(store: RunStore) -> dict[str, Any] | None:
    state = runqueue.scheduler(store)
    return asdict(state) if state else None


def say_scheduler(store: RunStore, started: bool | None = None) -> str:
    state = runqueue.scheduler(store)
    if state is None:
        return "scheduler: not running (start it with: tuneterm queue start)"
    what = "started" if started else "running"
    devices = "(detecting)" if state.gpus is None else ",".join(state.gpus) or "CPU slots"
    return f"scheduler: {what} (pid {state.pid}, devices {devices})"


# -- run --queue / resume --queue ----------------------------------------------------------------
def enqueue_config(args: argparse.Namespace, cfg: Any) -> int:
    """`tuneterm run CONFIG --queue`: validated now, started by the scheduler later."""
    store = store_of(args)
    launcher.validate(cfg, store)
    info = runqueue.enqueue(store, cfg, name=args.name or "")
    return _queued(args, store, info)


def requeue_run(args: argparse.Namespace, store: RunStore, run_id: str) -> int:
    return _queued(args, store, runqueue.requeue(store, run_id))


def _queued(args: argparse.Namespace, store: RunStore, info: RunInfo) -> int:
    started = None if args.no_start else runqueue.start_scheduler(store)[1]
    place = next((r.queue_position for r in runqueue.queued(store) if r.id == info.id), 0)
    if args.json:
        row = report.summary(store.info(info.id))
        row["queue_position"] = place
        out({**row, "scheduler": scheduler_json(store)})
    else:
        print(info.id)
        print(f"queued at position {place}; {say_scheduler(store, started)}", file=sys.stderr)
    return EXIT_OK


# -- queue ---------------------------------------------------------------------------------------
def cmd_queue(args: argparse.Namespace) -> int:
    store = store_of(args)
    action = args.action or "ls"
    if action == "start":
        return _queue_start(args, store)
    if action == "stop":
        state = runqueue.stop_scheduler(store, wait=args.wait)
        if state is None:
            raise RunStateError(f"no queue scheduler runs for {store.root}")
        out({"stopped": asdict(state)}) if args.json else print(f"stopped scheduler {state.pid}")
        return EXIT_OK
    if action in ("move", "cancel"):
        run_id = store.resolve(args.run)
        if action == "cancel":
            info = runqueue.cancel(store, run_id)
            out(report.summary(info)) if args.json else print(f"{run_id}: {info.status}")
            return EXIT_OK
        runqueue.move(store, run_id, args.position)
    return _queue_ls(args, store)


def _queue_start(args: argparse.Namespace, store: RunStore) -> int:
    settings = runqueue.load_settings(store)
    if args.per_gpu is not None:
        settings.per_gpu = args.per_gpu
    if args.cpu_slots is not None:
        settings.cpu_slots = args.cpu_slots
    if args.gpus is not None:
        given = args.gpus.strip()
        settings.gpus = None if given == "auto" else [g for g in given.split(",") if g.strip()]
    runqueue.save_settings(store, settings)  # the running scheduler reads it on its next pass
    state, started = runqueue.start_scheduler(store)
    if args.json:
        out({"scheduler": asdict(state), "started": started, "settings": asdict(settings)})
    else:
        print(say_scheduler(store, started) + ("" if started else "; settings updated"))
    return EXIT_OK


def _queue_ls(args: argparse.Namespace, store: RunStore) -> int:
    runs = store.list()
    waiting = runqueue.number_queue(runs)
    live = [r for r in runs if r.alive and r.meta is not None and r.meta.gpus]
    settings = runqueue.load_settings(store)
    if args.json:
        rows = []
        for r in waiting:
            row = report.summary(r)
            row["queue_position"] = r.queue_position
            rows.append(row)
        out(
            {
                "scheduler": scheduler_json(store),
                "settings": asdict(settings),
                "queued": rows,
                "running": [report.summary(r) for r in live],
            }
        )
        return EXIT_OK
    from rich.table import Table

    con = console()
    con.print(say_scheduler(store))
    table = Table(box=None, header_style="bold")
    for col in ("POS", "ID", "NAME", "MODEL", "WAITING"):
        table.add_column(col, no_wrap=True)
    now = time.time()
    for r in waiting:
        m = r.meta
        assert m is not None
        table.add_row(
            str(r.queue_position), r.id, r.name, m.model, report.fmt_duration(now - m.created)
        )
    con.print(table if waiting else "the queue is empty")
    for r in live:
        con.print(f"  running {r.id} on {r.meta.gpus if r.meta else '?'}")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------------
def add_commands(add: AddCommand) -> None:
    p = add("queue", cmd_queue, "the run queue: ls, start, stop, move RUN POS, cancel RUN")
    qsub = p.add_subparsers(dest="action", metavar="ACTION", help="what to do (default ls)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")  # fmt: skip
    common.add_argument("--runs-dir", default=argparse.SUPPRESS,
                        help="the run store (default: $TUNETERM_RUNS or ./runs)")  # fmt: skip
    qsub.add_parser("ls", parents=[common], help="queued runs in order, and the scheduler")
    s = qsub.add_parser("start", parents=[common], help="start the scheduler (or update it)")
    s.add_argument("--per-gpu", type=int, help="runs at once on one GPU (default 1)")
    s.add_argument("--cpu-slots", type=int, help="runs at once without GPUs (default 1)")
    s.add_argument("--gpus", help="GPU ids to use, e.g. 0,1; 'auto' = every visible GPU")
    s = qsub.add_parser("stop", parents=[common], help="stop the scheduler; runs go on")
    s.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait for the scheduler to exit (default 10)")  # fmt: skip
    s = qsub.add_parser("move", parents=[common], help="put a queued run at a position (1 = next)")
    s.add_argument("run", help=RUN_HELP)
    s.add_argument("position", type=int, help="its place in the queue, 1 = next")
    s = qsub.add_parser("cancel", parents=[common], help="take a run off the queue (cancelled)")
    s.add_argument("run", help=RUN_HELP)
