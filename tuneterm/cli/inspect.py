"""Commands that read runs: ls, show, events, compare, export."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tuneterm.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    AddCommand,
    console,
    out,
    status_style,
    store_of,
)
from tuneterm.cli.listing import COLUMNS, cut, layout, plain_lines, row_of
from tuneterm.health.watch import Watcher
from tuneterm.runs import report, timing
from tuneterm.store.runs import RunNotFound


def cmd_ls(args: argparse.Namespace) -> int:
    store = store_of(args)
    runs = store.list(status=args.status)
    alerts = {r.id: r.alerts for r in Watcher(store).check()}
    if args.json:
        out([report.summary(r, alerts.get(r.id, [])) for r in runs])
        return EXIT_OK
    if not runs:
        console().print(f"no runs in {store.root}")
        return EXIT_OK
    rows = [row_of(r, len(alerts.get(r.id, []))) for r in runs]
    if not sys.stdout.isatty():  # piped: every value whole, tab-separated, for scripts
        print("\n".join(plain_lines(rows)), flush=True)
        return EXIT_OK
    from rich.text import Text

    fit = layout(rows, shutil.get_terminal_size().columns)
    headers = dict(COLUMNS)
    con = console()
    line = "  ".join(headers[k].ljust(fit.widths[k]) for k in fit.keys)
    con.print(Text(line.rstrip(), style="bold"), soft_wrap=True)
    for row in rows:
        text = Text()
        for i, k in enumerate(fit.keys):
            if i:
                text.append("  ")
            style = status_style(row["status"].split(" ")[0]) if k == "status" else ""
            text.append(cut(row.get(k, ""), fit.widths[k]).ljust(fit.widths[k]), style)
        text.rstrip()
        con.print(text, soft_wrap=True)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    store = store_of(args)
    info = store.info(store.resolve(args.run), events=True)
    if args.timing:  # where the run's wall time went (runs/timing.py)
        tm = timing.of_run(store, info.id)
        if args.json:
            out(tm.to_dict())
        else:
            print("\n".join(timing.lines(tm)), flush=True)
        return EXIT_OK
    alerts = [a for r in Watcher(store).check(only=info.id) for a in r.alerts]
    data = report.detail(store, info, alerts)
    if args.json:
        out(data)
        return EXIT_OK
    con = console()
    con.print(
        f"[bold]{info.name}[/] ({info.id})  [{status_style(info.status)}]{info.status}[/]"
        + (f"  {info.reason}" if info.reason else "")
    )
    for key in (
        "model",
        "dataset",
        "device",
        "host",
        "epoch",
        "epochs",
        "step",
        "total_steps",
        "last_loss",
        "throughput",
        "data_wait",
        "gpu_mem_peak",
        "best",
        "final",
        "params",
        "resumes",
        "parent",
        "error",
    ):
        if data.get(key) not in (None, "", {}, 0) or key in ("epoch", "step"):
            con.print(f"  {key:12} {data.get(key)}")
    for a in data["alerts"]:
        colour = "red" if a["severity"] == "error" else "yellow"
        con.print(
            f"  [{colour}]alert[/]        {a['kind']}: {a['message']}\n{'':15}[dim]{a['hint']}[/]"
        )
    if info.meta and info.meta.final.get("per_class"):
        con.print(
            "  per class    "
            + "  ".join(f"{k}:{v:.2f}" for k, v in info.meta.final["per_class"].items())
        )
    report_rows = info.meta.final.get("report") if info.meta else None
    if report_rows:  # text runs: precision, recall and F1 per class
        con.print("  class report " + "  ".join(("precision", "recall", "f1", "support")))
        for cls, r in report_rows.items():
            con.print(
                f"    {cls:12} {r['precision']:9.3f} {r['recall']:6.3f} {r['f1']:4.3f} "
                f"{r['support']:7d}"
            )
    con.print(f"  path         {data['path']}")
    return EXIT_OK


def _fmt_event(e: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(e["t"]))
    skip = {"seq", "t", "kind", "traceback", "confusion", "per_class", "report"}
    fields = " ".join(f"{k}={_short(v)}" for k, v in e.items() if k not in skip)
    return f"{stamp} {e['kind']:<10} {fields}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)[:80]
    return str(v)


def cmd_events(args: argparse.Namespace) -> int:
    store = store_of(args)
    run_id = store.resolve(args.run)
    reader = store.events(run_id)
    kinds = set(args.kind) if args.kind else None
    try:
        while True:
            for e in reader.poll():
                if kinds and e["kind"] not in kinds:
                    continue
                print(json.dumps(e) if args.json else _fmt_event(e), flush=True)
            if not args.follow:
                break
            if not store.info(run_id).alive:
                for e in reader.poll():  # the engine's last flush
                    if not kinds or e["kind"] in kinds:
                        print(json.dumps(e) if args.json else _fmt_event(e), flush=True)
                break
            time.sleep(0.25)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    store = store_of(args)
    ids = list(dict.fromkeys(store.resolve(r) for r in args.runs))
    if len(ids) < 2:
        raise RunNotFound("compare needs at least two different runs")
    data = report.compare(store, [store.info(i) for i in ids])
    if args.json:
        out(data)
        return EXIT_OK
    table = Table(title="metrics", box=None, header_style="bold")
    table.add_column("metric")
    for r in data["runs"]:
        table.add_column(f"{r['name']}\n{r['id']}", justify="right")
    for metric, values in data["metrics"].items():
        fmt = report.fmt_duration if metric == "elapsed" else report.fmt_metric
        table.add_row(metric, *[fmt(values[i]) for i in ids])
    diff = Table(title="config keys that differ", box=None, header_style="bold")
    diff.add_column("key")
    for r in data["runs"]:
        diff.add_column(r["id"])
    for key, values in data["config_diff"].items():
        diff.add_row(key, *[json.dumps(values[i]) for i in ids])
    con = console()
    con.print(table)
    con.print(diff if data["config_diff"] else "configs are identical")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    store = store_of(args)
    info = store.info(store.resolve(args.run))
    events = list(store.events(info.id))
    text = (
        report.export_csv(events)
        if args.format == "csv"
        else report.export_json(store, info, events)
    )
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(events)} events)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    p = add("ls", cmd_ls, "list runs (tab-separated and whole when piped)")
    p.add_argument("--status", help="only runs with this status")
    p = add("show", cmd_show, "show one run")
    p.add_argument("run")
    p.add_argument("--timing", action="store_true", help="where the run's wall time went")
    p = add("events", cmd_events, "print a run's events as lines (JSON lines with --json)")
    p.add_argument("run")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    p.add_argument("--kind", action="append", help="only events of this kind (repeatable)")
    p = add("compare", cmd_compare, "metrics side by side, plus the config keys that differ")
    p.add_argument("runs", nargs="+")
    p = add("export", cmd_export, "export a run's events as CSV or JSON", json_flag=False)
    p.add_argument("run")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", help="file to write (default: stdout)")
