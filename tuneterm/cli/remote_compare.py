"""`compare --host ...` over runs on different hosts: each run's `show --json` from its own
host, metrics side by side here. The config diff needs both configs on one host, so it is
left to `compare` on one host."""

from __future__ import annotations

import argparse
from typing import Any

from tuneterm.cli.common import EXIT_OK, console, out
from tuneterm.hosts import HostSpec, Transport
from tuneterm.hosts.fleet import parse_json
from tuneterm.runs import report

RUN_FIGURES = ("last_loss", "throughput", "elapsed")


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    row = {f"best.{k}": v for k, v in (data.get("best") or {}).items()}
    row.update({f"final.{k}": v for k, v in (data.get("final") or {}).items()})
    row.update({k: data.get(k) for k in RUN_FIGURES})
    return {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def compare_across(args: argparse.Namespace, runs: list[tuple[HostSpec, str]]) -> int:
    shown = []
    for spec, run_id in runs:
        reply = Transport(spec).call(["show", "--json", run_id], timeout=60)
        data = parse_json(spec.name, reply)
        if reply.code != 0:
            return int(reply.code)
        shown.append((f"{spec.name}:{data['id']}", data))
    rows = {name: _flat(data) for name, data in shown}
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    metrics = {k: {name: row.get(k) for name, row in rows.items()} for k in keys}
    if args.json:
        runs_out = [{**report_row(data), "id": name} for name, data in shown]
        out({"runs": runs_out, "metrics": metrics, "config_diff": None})
        return EXIT_OK
    from rich.table import Table

    table = Table(title="metrics", box=None, header_style="bold")
    table.add_column("metric")
    for name, data in shown:
        table.add_column(f"{data.get('name', '')}\n{name}", justify="right")
    for key, values in metrics.items():
        fmt = report.FORMATS.get(key, report.fmt_metric)
        table.add_row(key, *[fmt(v) if v is not None else "-" for v in values.values()])
    con = console()
    con.print(table, markup=False)
    con.print("config keys that differ: compare runs on one host to see them")
    return EXIT_OK


def report_row(data: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "status", "task", "model", "dataset", "best_metric", "final")
    return {k: data.get(k) for k in keep}
