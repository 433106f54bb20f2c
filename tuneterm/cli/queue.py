"""CLI commands of the run queue and sweeps: `queue ...`, `sweep`, `sweep-best`.

Same exit codes as tuneterm/cli.py: 0 ok, 1 failed, 2 invalid input (nothing created),
3 the run is not in a state the action fits (e.g. cancelling a running run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tuneterm.cli import EXIT_FAILED, EXIT_OK, _console, _out, _store
from tuneterm.config import apply_overrides, load, parse_toml
from tuneterm.runs import report, runqueue, sweep
from tuneterm.store.runs import RunInfo, RunStore

AddCommand = Callable[..., argparse.ArgumentParser]


def _scheduler_json(store: RunStore) -> dict[str, Any] | None:
    state = runqueue.scheduler(store)
    return asdict(state) if state else None


def _say_scheduler(store: RunStore, started: bool | None = None) -> str:
    state = runqueue.scheduler(store)
    if state is None:
        return "scheduler: not running (start it with: tuneterm queue start)"
    what = "started" if started else "running"
    devices = "(detecting)" if state.gpus is None else ",".join(state.gpus) or "CPU slots"
    return f"scheduler: {what} (pid {state.pid}, devices {devices})"


# -- run --queue / resume --queue ----------------------------------------------------------------
def enqueue_config(args: argparse.Namespace, cfg: Any) -> int:
    """`tuneterm run CONFIG --queue`: validated now, started by the scheduler later."""
    from tuneterm.runs import launcher

    store = _store(args)
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
        _out({**row, "scheduler": _scheduler_json(store)})
    else:
        print(info.id)
        print(f"queued at position {place}; {_say_scheduler(store, started)}", file=sys.stderr)
    return EXIT_OK


# -- queue ---------------------------------------------------------------------------------------
def cmd_queue(args: argparse.Namespace) -> int:
    store = _store(args)
    action = args.action or "ls"
    if action == "start":
        return _queue_start(args, store)
    if action == "stop":
        state = runqueue.stop_scheduler(store, wait=args.wait)
        if state is None:
            from tuneterm.runs.launcher import RunStateError

            raise RunStateError(f"no queue scheduler runs for {store.root}")
        _out({"stopped": asdict(state)}) if args.json else print(f"stopped scheduler {state.pid}")
        return EXIT_OK
    if action in ("move", "cancel"):
        run_id = store.resolve(args.run)
        if action == "cancel":
            info = runqueue.cancel(store, run_id)
            _out(report.summary(info)) if args.json else print(f"{run_id}: {info.status}")
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
        _out({"scheduler": asdict(state), "started": started, "settings": asdict(settings)})
    else:
        print(_say_scheduler(store, started) + ("" if started else "; settings updated"))
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
        _out(
            {
                "scheduler": _scheduler_json(store),
                "settings": asdict(settings),
                "queued": rows,
                "running": [report.summary(r) for r in live],
            }
        )
        return EXIT_OK
    from rich.table import Table

    console = _console()
    console.print(_say_scheduler(store))
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
    console.print(table if waiting else "the queue is empty")
    for r in live:
        console.print(f"  running {r.id} on {r.meta.gpus if r.meta else '?'}")
    return EXIT_OK


# -- sweep -----------------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    from tuneterm.runs import launcher

    store = _store(args)
    load(args.config, args.set)  # the base config must be valid by itself
    text = Path(args.config).read_text(encoding="utf-8")
    base = apply_overrides(parse_toml(text, args.config), args.set)
    grid = [sweep.parse_values(g, "--grid") for g in args.grid]
    grid += [sweep.parse_values(c, "--choice") for c in args.choice]
    ranges = [sweep.parse_range(r) for r in args.range]
    group = sweep.check_group(args.name or sweep.default_group(), store)
    pts = sweep.points(grid, ranges, args.random, args.seed)
    sweep.build(base, pts, args.config, check=lambda cfg: launcher.validate(cfg, store))
    keys = [a.key for a in (*grid, *ranges)]
    if args.dry_run:
        data = {"group": group, "keys": keys, "points": [p.params for p in pts]}
        _out(data) if args.json else [print(p.index, json.dumps(p.params)) for p in pts]
        return EXIT_OK
    created: list[tuple[RunInfo, sweep.Point]] = []
    for (cfg, name), p in zip(sweep.prepare(group, pts), pts, strict=True):
        if args.now:
            info = launcher.start(store, cfg, name=name, checked=True)
        else:
            info = runqueue.enqueue(store, cfg, name=name)
        created.append((info, p))
    sweep.record(store, group, keys, created)
    started = None
    if not args.now and not args.no_start:
        started = runqueue.start_scheduler(store)[1]
    if args.json and not args.wait:
        runs = [{"id": i.id, "name": i.name, "params": p.params} for i, p in created]
        _out({"group": group, "keys": keys, "queued": not args.now, "runs": runs,
              "scheduler": _scheduler_json(store)})  # fmt: skip
    elif not args.json:
        for info, p in created:
            print(f"{info.id}  {info.name}  " + " ".join(f"{k}={v}" for k, v in p.params.items()))
        print(f"sweep {group}: {len(created)} runs tagged sweep:{group}", file=sys.stderr)
        if started is not None:
            print(_say_scheduler(store, started), file=sys.stderr)
        print(f"best so far: tuneterm sweep-best {group}", file=sys.stderr)
    if args.wait:
        from tuneterm.runs.watch import watch

        watch(store, [i.id for i, _ in created], _console(), quiet=args.json)
        return _print_best(args, store, group, "")
    return EXIT_OK


def cmd_sweep_best(args: argparse.Namespace) -> int:
    return _print_best(args, _store(args), args.group, args.metric or "")


def _print_best(args: argparse.Namespace, store: RunStore, group: str, metric: str) -> int:
    table = sweep.group_table(store, group, metric)
    best = table.best
    if args.json:
        _out(table.to_json())
        return EXIT_OK if best else EXIT_FAILED
    from rich.table import Table

    out = Table(title=f"sweep {group}: sorted by {table.metric}", box=None, header_style="bold")
    for col in ("#", "run", "status", *table.keys, table.metric):
        out.add_column(col, no_wrap=True)
    for rank, row in enumerate(table.rows, start=1):
        out.add_row(
            str(rank),
            row.info.name or row.info.id,
            row.info.status,
            *[json.dumps(row.params.get(k)) for k in table.keys],
            report.fmt_metric(row.value),
        )
    console = _console()
    console.print(out)
    if best is None:
        console.print(f"no run of sweep {group} has {table.metric} yet")
        return EXIT_FAILED
    params = " ".join(f"{k}={json.dumps(v)}" for k, v in best.params.items())
    console.print(
        f"best: {best.info.id} ({best.info.name}) {table.metric} {best.value:.4f}  {params}"
    )
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------------
def add_commands(add: AddCommand) -> None:
    p = add("queue", cmd_queue, "the run queue: ls, start, stop, move RUN POS, cancel RUN")
    qsub = p.add_subparsers(dest="action", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    common.add_argument("--runs-dir", default=argparse.SUPPRESS)
    qsub.add_parser("ls", parents=[common], help="queued runs in order, and the scheduler")
    s = qsub.add_parser("start", parents=[common], help="start the scheduler (or update it)")
    s.add_argument("--per-gpu", type=int, help="runs at once on one GPU (default 1)")
    s.add_argument("--cpu-slots", type=int, help="runs at once without GPUs (default 1)")
    s.add_argument("--gpus", help="GPU ids to use, e.g. 0,1; 'auto' = every visible GPU")
    s = qsub.add_parser("stop", parents=[common], help="stop the scheduler; runs go on")
    s.add_argument("--wait", type=float, default=10.0)
    s = qsub.add_parser("move", parents=[common], help="put a queued run at a position (1 = next)")
    s.add_argument("run")
    s.add_argument("position", type=int)
    s = qsub.add_parser("cancel", parents=[common], help="take a run off the queue (cancelled)")
    s.add_argument("run")

    p = add("sweep", cmd_sweep, "queue one run per point of a grid or random search")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep a key over values (repeatable; grids are crossed)")  # fmt: skip
    p.add_argument("--random", type=int, default=0, metavar="N", help="N random points")
    p.add_argument("--range", action="append", default=[], metavar="KEY=LO:HI[:log|:int]",
                   help="with --random: uniform, log-uniform (log) or integer range")  # fmt: skip
    p.add_argument("--choice", action="append", default=[], metavar="KEY=A,B",
                   help="with --random: pick one value per point")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    p.add_argument("--name", default="", help="the group name (default sweep-<time>)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--queue", action="store_true", help="queue the runs (the default)")
    when.add_argument("--now", action="store_true", help="start every run at once")
    p.add_argument("--no-start", action="store_true", help="queue without starting the scheduler")
    p.add_argument("--dry-run", action="store_true", help="validate and print; create nothing")
    p.add_argument("--wait", action="store_true", help="follow the runs, then print the best")

    p = add("sweep-best", cmd_sweep_best, "a sweep's runs sorted by a metric, and the best")
    p.add_argument("group")
    p.add_argument("--metric", choices=sweep.METRICS, help="default: the runs' train.metric")
