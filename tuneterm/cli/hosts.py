"""`tuneterm hosts` (every host: reachable, version, GPUs, live runs) and `tuneterm gpus` (this
machine's GPUs, one sample, as `hosts` reads it over ssh)."""

from __future__ import annotations

import argparse
import os
import socket
import time
from typing import Any

from tuneterm import __version__
from tuneterm.cli.common import EXIT_OK, AddCommand, console, json_text, out, store_of
from tuneterm.hosts import ALL, PROTOCOL, Fleet, HostInfo, load_hosts
from tuneterm.monitor import gpu_samples, nvml_status
from tuneterm.store.runs import RunStore

# A host could not be reached, or answered with an error; stderr (and --json) name which.
EXIT_HOST = 7
GIB = 1024**3


def cmd_gpus(args: argparse.Namespace) -> int:
    store = store_of(args)
    if args.watch:  # one JSON line per sample, until whoever started it is gone
        parent = os.getppid()
        while os.getppid() == parent:
            print(json_text(_sample(store)), flush=True)
            time.sleep(args.watch)
        return EXIT_OK
    data = _sample(store)
    if args.json:
        out(data)
        return EXIT_OK
    con = console()
    con.print(f"{data['hostname']}: tuneterm {__version__}, {data['live']} live run(s)")
    for line in gpu_lines(data["gpus"]) or [data["nvml"] or "no GPUs"]:
        con.print(f"  {line}", markup=False)
    return EXIT_OK


def _sample(store: RunStore) -> dict[str, Any]:
    runs = store.list()
    return {
        "protocol": PROTOCOL,
        "version": __version__,
        "hostname": socket.gethostname(),
        "time": time.time(),
        "gpus": [g.to_dict() for g in gpu_samples()],
        "nvml": nvml_status(),
        "live": sum(1 for r in runs if r.alive),
        "runs": len(runs),
    }


def gpu_lines(gpus: list[dict[str, object]]) -> list[str]:
    """`0 NVIDIA H100  12%  30.1/80.0 GiB`: one line per GPU."""
    lines = []
    for g in gpus:
        used = float(g.get("mem_used", 0) or 0) / GIB  # type: ignore[arg-type]
        total = float(g.get("mem_total", 0) or 0) / GIB  # type: ignore[arg-type]
        lines.append(f"{g.get('index')} {g.get('name')}  {g.get('util', 0):.0f}%  "
                     f"{used:.1f}/{total:.1f} GiB")  # fmt: skip
    return lines


def cmd_hosts(args: argparse.Namespace) -> int:
    settings = load_hosts()
    wanted = args.host or ([ALL] if settings.hosts else [])
    if not wanted:
        print(f"no hosts yet: add [hosts.NAME] tables to {settings.source} (see README)")
        return EXIT_OK
    fleet = Fleet(settings.pick(wanted, args.runs_dir or ""))
    infos = fleet.info()
    failed = [i for i in infos.values() if i.error]
    if args.json:
        out({"hosts": [i.to_dict() for i in infos.values()], "failed": [i.host for i in failed]})
    else:
        _print_hosts(list(infos.values()))
    return EXIT_HOST if failed else EXIT_OK


def _print_hosts(infos: list[HostInfo]) -> None:
    con = console()
    for i in infos:
        if i.error:
            con.print(f"[bold]{i.host}[/]  [red]{i.error}[/]", highlight=False)
            continue
        where = f" ({i.hostname})" if i.hostname and i.hostname != i.host else ""
        con.print(
            f"[bold]{i.host}[/]{where}  tuneterm {i.version}  {i.live} live / {i.runs} runs",
            highlight=False,
        )
        for line in gpu_lines(i.gpus) or [i.nvml or "no GPUs"]:
            con.print(f"  {line}", markup=False)


def add_commands(add: AddCommand) -> None:
    p = add("gpus", cmd_gpus, "this machine's GPUs (one NVML sample), version and live runs")
    p.add_argument("--watch", type=float, metavar="SECONDS", default=0.0,
                   help="one JSON line per sample, every SECONDS, until stopped")  # fmt: skip
    p = add("hosts", cmd_hosts, "every host of settings.toml: reachable, version, GPUs, runs")
    p.add_argument("--host", action="append", metavar="NAME",
                   help="only this host (repeatable; default all)")  # fmt: skip
