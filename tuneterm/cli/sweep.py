"""CLI commands of sweeps: `sweep` (a grid or random search) and `sweep-best`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tuneterm.cli.common import EXIT_FAILED, EXIT_OK, AddCommand, console, out, store_of
from tuneterm.cli.queue import say_scheduler, scheduler_json
from tuneterm.cli.scripts import script_dict, sweep_configs, swept_args
from tuneterm.config import ConfigError, ConfigIssue, apply_overrides, flatten, load, parse_toml
from tuneterm.runs import launcher, report, runqueue, sweep
from tuneterm.runs.watch import watch
from tuneterm.store.runs import RunInfo, RunStore


def cmd_sweep(args: argparse.Namespace) -> int:
    store = store_of(args)
    script = script_dict(args, getattr(args, "script_command", None))
    if script is not None:
        group, pts, keys = _script_points(args, store, script)
    else:
        group, pts, keys = _config_points(args, store)
    if args.dry_run:
        data = {"group": group, "keys": keys, "points": [p.params for p in pts]}
        out(data) if args.json else [print(p.index, json.dumps(p.params)) for p in pts]
        return EXIT_OK
    created = list(zip(_make_runs(args, store, sweep.prepare(group, pts)), pts, strict=True))
    sweep.record(store, group, keys, created)
    started = None
    if not args.now and not args.no_start and not args.slurm:
        started = runqueue.start_scheduler(store)[1]
    if args.json and not args.wait:
        runs = [{"id": i.id, "name": i.name, "params": p.params} for i, p in created]
        out({"group": group, "keys": keys, "queued": not (args.now or args.slurm), "runs": runs,
              "scheduler": scheduler_json(store)})  # fmt: skip
    elif not args.json:
        for info, p in created:
            print(f"{info.id}  {info.name}  " + " ".join(f"{k}={v}" for k, v in p.params.items()))
        print(f"sweep {group}: {len(created)} runs tagged sweep:{group}", file=sys.stderr)
        if started is not None:
            print(say_scheduler(store, started), file=sys.stderr)
        print(f"best so far: tuneterm sweep-best {group}", file=sys.stderr)
    if args.wait:
        watch(store, [i.id for i, _ in created], console(), quiet=args.json)
        return _print_best(args, store, group, "")
    return EXIT_OK


def _make_runs(
    args: argparse.Namespace, store: RunStore, prepared: list[tuple[Any, str]]
) -> list[RunInfo]:
    """One run per point: one Slurm job array, started now, or queued (the default)."""
    if args.slurm:
        return launcher.submit_slurm(store, prepared)
    if args.now:
        return [launcher.start(store, cfg, name=name, checked=True) for cfg, name in prepared]
    return [runqueue.enqueue(store, cfg, name=name) for cfg, name in prepared]


def _config_points(
    args: argparse.Namespace, store: RunStore
) -> tuple[str, list[sweep.Point], list[str]]:
    if not args.config:
        raise ConfigError([ConfigIssue("config", "", "give a config file, or a command after --")])
    load(args.config, args.set)  # the base config must be valid by itself
    text = Path(args.config).read_text(encoding="utf-8")
    base = apply_overrides(parse_toml(text, args.config), args.set)
    grid = [sweep.parse_values(g, "--grid") for g in args.grid]
    grid += [sweep.parse_values(c, "--choice") for c in args.choice]
    ranges = [sweep.parse_range(r) for r in args.range]
    group = sweep.check_group(args.name or sweep.default_group(), store)
    pts = sweep.points(grid, ranges, args.random, args.seed)
    sweep.build(base, pts, args.config, check=lambda cfg: launcher.validate(cfg, store))
    return group, pts, [a.key for a in (*grid, *ranges)]


def _script_points(
    args: argparse.Namespace, store: RunStore, data: dict[str, Any]
) -> tuple[str, list[sweep.Point], list[str]]:
    """A sweep over a command: --grid/--choice values fill its {key} fields."""
    if args.range:
        raise ConfigError([ConfigIssue("--range", args.range[0], "not for a command; use --grid")])
    axes = []
    for flag, items in (("--grid", args.grid), ("--choice", args.choice)):
        for item in items:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip() or not raw.strip():
                raise ConfigError([ConfigIssue(flag, item, "expected key=v1,v2,...")])
            axes.append(sweep.Axis(key.strip(), tuple(sweep.split_values(raw))))
    group = sweep.check_group(args.name or sweep.default_group(), store)
    pts = sweep.points(axes, [], args.random, args.seed)
    values = [dict(o.partition("=")[::2] for o in p.overrides) for p in pts]
    keys = [a.key for a in axes]
    cfgs = sweep_configs(data, values, keys)
    launcher.validate(cfgs[0], store)
    flat = flatten(cfgs[0])
    arg_of = swept_args([str(a) for a in data["script"]["command"]], keys)
    shown = [f"args.{arg_of.get(k, k)}" if f"args.{arg_of.get(k, k)}" in flat else k for k in keys]
    for p, cfg, vals in zip(pts, cfgs, values, strict=True):
        p.cfg = cfg
        f = flatten(cfg)
        p.params = {s: f.get(s, vals[k]) for s, k in zip(shown, keys, strict=True)}
    return group, pts, shown


def cmd_sweep_best(args: argparse.Namespace) -> int:
    return _print_best(args, store_of(args), args.group, args.metric or "")


def _print_best(args: argparse.Namespace, store: RunStore, group: str, metric: str) -> int:
    table = sweep.group_table(store, group, metric)
    best = table.best
    if args.json:
        out(table.to_json())
        return EXIT_OK if best else EXIT_FAILED
    from rich.table import Table

    order = "higher" if table.higher else "lower"
    title = f"sweep {group}: sorted by {table.metric}, {order} first"
    table_out = Table(title=title, box=None, header_style="bold")
    for col in ("#", "run", "status", *table.keys, table.metric):
        table_out.add_column(col, no_wrap=True)
    for rank, row in enumerate(table.rows, start=1):
        table_out.add_row(
            str(rank),
            row.info.name or row.info.id,
            row.info.status,
            *[json.dumps(row.params.get(k)) for k in table.keys],
            report.fmt_metric(row.value),
        )
    con = console()
    con.print(table_out)
    if best is None:
        con.print(f"no run of sweep {group} has {table.metric or 'a metric'} yet")
        return EXIT_FAILED
    params = " ".join(f"{k}={json.dumps(v)}" for k, v in best.params.items())
    con.print(f"best: {best.info.id} ({best.info.name}) {table.metric} {best.value:.4f}  {params}")
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    p = add(
        "sweep",
        cmd_sweep,
        "queue one run per point of a grid or random search (of a config, or -- CMD {key})",
    )
    p.add_argument("config", nargs="?", default="",
                   help="the TOML config each point changes; none with -- CMD {key}")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key in every point, e.g. train.epochs=3")  # fmt: skip
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep a key over values (repeatable; grids are crossed)")  # fmt: skip
    p.add_argument("--random", type=int, default=0, metavar="N", help="N random points")
    p.add_argument("--range", action="append", default=[], metavar="KEY=LO:HI[:SCALE]",
                   help="with --random: SCALE lin (uniform, the default), log (log-uniform), "
                   "int (uniform integers) or logint (log-uniform integers)")  # fmt: skip
    p.add_argument("--choice", action="append", default=[], metavar="KEY=A,B",
                   help="with --random: pick one value per point")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    p.add_argument("--name", default="", help="the group name (default sweep-<time>)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--queue", action="store_true", help="queue the runs (the default)")
    when.add_argument("--now", action="store_true", help="start every run at once")
    p.add_argument("--no-start", action="store_true", help="queue without starting the scheduler")
    p.add_argument("--slurm", action="store_true", help="submit as one Slurm job array")
    p.add_argument("--dry-run", action="store_true", help="validate and print; create nothing")
    p.add_argument("--wait", action="store_true", help="follow the runs, then print the best")

    p = add("sweep-best", cmd_sweep_best, "a sweep's runs sorted by a metric, and the best")
    p.add_argument("group", help="the sweep's group name (sweep --name, or as ls shows it)")
    p.add_argument(
        "--metric",
        help="a val metric the runs' kind reports, or test_*; default: the one that picked "
        "their best checkpoint (train.metric)",
    )
