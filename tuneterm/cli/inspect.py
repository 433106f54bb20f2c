"""Commands that read runs: ls, show, events, compare, export."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tuneterm.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    RUN_HELP,
    RUNS_HELP,
    AddCommand,
    console,
    json_text,
    out,
    status_style,
    store_of,
)
from tuneterm.cli.listing import columns_of, cut, fit_rows, plain_lines, row_of, short_ids
from tuneterm.health.watch import Watcher
from tuneterm.runs import report, timing, view
from tuneterm.store.events import DamagedEvents, missing_segments
from tuneterm.store.meta import STATUSES
from tuneterm.store.runs import RunNotFound, RunStore
from tuneterm.store.text import printable


def _plain(value: object) -> str:
    """User text for a rich console: no control codes, no markup."""
    from rich.markup import escape

    return escape(printable(str(value)))


def cmd_ls(args: argparse.Namespace) -> int:
    store = store_of(args)
    if args.watch:
        return _watch_ls(store, args.status, args.watch)
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

    fit, rows = fit_rows(rows, shutil.get_terminal_size().columns)
    headers = dict(columns_of(rows))
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


KEEPALIVE_S = 5.0  # `ls --watch` says the list again after this long, changed or not


def _watch_ls(store: RunStore, status: str | None, every: float) -> int:
    """One JSON line (the `ls --json` list) each time the list changes, and at least every
    KEEPALIVE_S, until whoever started it is gone: the stream a fleet view reads over ssh."""
    parent, last, said = os.getppid(), "", 0.0
    while os.getppid() == parent:
        text = json_text([report.summary(r) for r in store.list(status=status)])
        if text != last or time.monotonic() - said >= KEEPALIVE_S:
            print(text, flush=True)
            last, said = text, time.monotonic()
        time.sleep(every)
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
    from rich.text import Text

    con = console()
    con.print(
        f"[bold]{_plain(info.name)}[/] ({info.id})  [{status_style(info.status)}]{info.status}[/]"
        + (f"  {_plain(info.reason)}" if info.reason else "")
    )
    for key, text in _show_rows(data):  # a long value wraps under itself, not the keys
        lines = textwrap.wrap(
            printable(text), max(20, con.width - 15), break_long_words=False, break_on_hyphens=False
        )
        con.print(Text(f"  {key:12} " + f"\n{'':15}".join(lines)))
    for a in data.get("alerts", []):  # none for a run whose meta.json is damaged
        colour = "red" if a["severity"] == "error" else "yellow"
        con.print(
            f"  [{colour}]alert[/]        {a['kind']}: {_plain(a['message'])}\n"
            f"{'':15}[dim]{_plain(a['hint'])}[/]"
        )
    if info.meta and info.meta.final.get("per_class"):
        con.print(
            "  per class    "
            + "  ".join(f"{_plain(k)}:{v:.2f}" for k, v in info.meta.final["per_class"].items())
        )
    report_rows = info.meta.final.get("report") if info.meta else None
    if report_rows:  # text runs: precision, recall and F1 per class
        con.print("  class report " + "  ".join(("precision", "recall", "f1", "support")))
        for cls, r in report_rows.items():
            con.print(
                f"    {_plain(cls):12} {r['precision']:9.3f} {r['recall']:6.3f} {r['f1']:4.3f} "
                f"{r['support']:7d}"
            )
    con.print(f"  path         {data['path']}")
    return EXIT_OK


SHOWN = ("model", "dataset", "device", "host", "progress", "last_loss", "throughput", "data_wait",
         "gpu_mem_peak", "best", "final", "params", "resumes", "parent", "parents", "tags", "notes",
         "versions", "hparams", "error")  # fmt: skip


def _number(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _pairs(d: dict[str, Any]) -> str:
    return "  ".join(f"{k} {_number(v)}" for k, v in d.items() if not isinstance(v, dict | list))


def _best_text(data: dict[str, Any]) -> str:
    """`val acc 0.9137 (epoch 2, step 70)`: the run's metric, as its spec formats it."""
    best = data.get("best_metric")
    if not best:
        return ""
    where = [f"epoch {best['epoch']}"] if best.get("epoch") is not None else []
    step = (data.get("best") or {}).get("step")
    where += [f"step {step}"] if step is not None else []
    return f"{best['label']} {best['text']}" + (f" ({', '.join(where)})" if where else "")


def _show_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """`show`'s lines, each value as a person reads it: figures rounded, no Python dicts."""
    epochs = f"epoch {data.get('epoch')}/{data['epochs']}" if data.get("epochs") else ""
    total = f"/{data['total_steps']}" if data.get("total_steps") else ""
    values: dict[str, Any] = {
        **data,
        "progress": "  ".join(x for x in (epochs, f"step {data.get('step')}{total}") if x),
        "best": _best_text(data),
        "final": _pairs({k: v for k, v in (data.get("final") or {}).items() if k != "epoch"}),
        "params": _pairs(data.get("params") or {}),
        "tags": " ".join("#" + t for t in data.get("tags") or []),
        "parents": " ".join(data.get("parents") or []),  # a soup's
        "versions": _pairs((data.get("meta") or {}).get("versions") or {}),
        "hparams": _pairs((data.get("meta") or {}).get("hparams") or {}),
        "throughput": f"{data['throughput']:.4g} examples/s" if data.get("throughput") else "",
    }
    return [
        (key, value if isinstance(value, str) else _number(value))
        for key in SHOWN
        if (value := values.get(key)) not in (None, "", {}, [], 0)
    ]


def _fmt_event(e: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(e["t"]))
    # `off`: where a script run's line sits in its log, the store's bookkeeping
    skip = {"seq", "t", "kind", "off", "traceback", "confusion", "per_class", "report"}
    fields = " ".join(
        f"{printable(str(k), tabs=False)}={printable(_short(v), tabs=False)}"
        for k, v in e.items()
        if k not in skip
    )
    return f"{stamp} {printable(str(e['kind']), tabs=False):<10} {fields}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)[:80]
    return str(v)


def _check_segments(store: RunStore, run_id: str) -> None:
    """Never a silent gap: meta.json knows how many events a finished run wrote."""
    meta = store.info(run_id).meta
    missing = missing_segments(store.events_dir(run_id), meta.events if meta else 0)
    if missing:
        count = f" (meta.json counts {meta.events} events)" if meta and meta.events else ""
        raise DamagedEvents(f"{missing[0]} is missing{count}")


def cmd_events(args: argparse.Namespace) -> int:
    store = store_of(args)
    run_id = store.resolve(args.run)
    reader = store.events(run_id)
    kinds = set(args.kind) if args.kind else None
    _check_segments(store, run_id)
    after = args.after
    parent = os.getppid()

    def emit(batch: list[Any]) -> None:
        for e in batch:
            if (kinds and e["kind"] not in kinds) or e["seq"] <= after:
                continue
            print(json_text(e) if args.json else _fmt_event(e), flush=True)

    try:
        while True:
            emit(reader.poll())
            if not args.follow:
                break
            if not store.info(run_id).alive:
                emit(reader.poll())  # the engine's last flush
                break
            if os.getppid() != parent:  # an ssh session that dropped: nobody reads us
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
    given = [store.resolve(r) for r in args.runs]
    ids = view.with_parents(given, {i.id: i for i in store.list()})  # a soup: its parents too
    if len(ids) < 2:
        raise RunNotFound("compare needs at least two different runs (or a soup)")
    data = report.compare(store, [store.info(i) for i in ids])
    if args.json:
        out(data)
        return EXIT_OK
    # Each run's column is headed by its name and its id's shortest unique tail (what `show`
    # accepts): whole ids would fill 80 columns with three runs, and be cut.
    tails = short_ids(ids)
    heads = [f"{_plain(r['name'] or r['id'])}\n[dim]{tails[r['id']]}[/]" for r in data["runs"]]
    table = Table(title="metrics", box=None, header_style="bold")
    table.add_column("metric", no_wrap=True)
    for head in heads:
        table.add_column(head, justify="right")
    for metric, values in data["metrics"].items():
        fmt = report.FORMATS.get(metric, report.fmt_metric)
        table.add_row(_plain(metric), *[fmt(values[i]) for i in ids])
    diff = Table(title="config keys that differ", box=None, header_style="bold")
    diff.add_column("key", no_wrap=True)
    for head in heads:
        diff.add_column(head)
    for key, values in data["config_diff"].items():
        diff.add_row(_plain(key), *[_plain(json.dumps(values[i])) for i in ids])
    con = console()
    con.print(table)
    con.print(diff if data["config_diff"] else "configs are identical")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    store = store_of(args)
    info = store.info(store.resolve(args.run))
    _check_segments(store, info.id)
    events = list(store.events(info.id))
    as_csv = args.format == "csv" and not args.json
    text = report.export_csv(events) if as_csv else report.export_json(store, info, events)
    # CSV keeps the metric and status events only: say how many rows it holds, not events read.
    count = sum(e.get("kind") in report.EXPORT_KINDS for e in events) if as_csv else len(events)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        what = "rows" if as_csv else "events"
        print(f"wrote {args.out} ({count} {what})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    p = add("ls", cmd_ls, "list runs (tab-separated and whole when piped)")
    p.add_argument("--status", choices=STATUSES, metavar="STATUS",
                   help=f"only runs with this status: {', '.join(STATUSES)}")  # fmt: skip
    p.add_argument("--watch", type=float, metavar="SECONDS", default=0.0,
                   help="one JSON line per change of the list, looking every SECONDS")  # fmt: skip
    p = add("show", cmd_show, "show one run")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--timing", action="store_true", help="where the run's wall time went")
    p = add("events", cmd_events, "print a run's events as lines (JSON lines with --json)")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    p.add_argument("--kind", action="append", help="only events of this kind (repeatable)")
    p.add_argument("--after", type=int, default=-1, metavar="SEQ",
                   help="only events after this seq (a follower's cursor)")  # fmt: skip
    p = add("compare", cmd_compare, "metrics side by side, plus the config keys that differ")
    p.add_argument("runs", nargs="+", help=RUNS_HELP)
    p = add("export", cmd_export, "export a run's events as CSV or JSON")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--format", choices=("csv", "json"), default="csv",
                   help="csv: one row per train/val/test/sys/status event; json: the run and "
                   "every event (default csv; --json is --format json)")  # fmt: skip
    p.add_argument("--out", help="file to write (default: stdout)")
