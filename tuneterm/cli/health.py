"""`tuneterm health [RUN]`: the open alerts of every run (or one), with what to do about each.

Exit 0 when there is none and 1 when there are some, so a cron job or a script can use it.
"""

from __future__ import annotations

import argparse
import time

from tuneterm.cli.common import EXIT_FAILED, EXIT_OK, AddCommand, console, out, store_of
from tuneterm.health.watch import Watcher


def cmd_health(args: argparse.Namespace) -> int:
    store = store_of(args)
    only = store.resolve(args.run) if args.run else None
    reports = Watcher(store).check(only=only)
    sick = [r for r in reports if r.alerts]
    if args.json:
        out(
            {
                "runs": [
                    {
                        "id": r.id,
                        "name": r.name,
                        "status": r.status,
                        "alerts": [a.to_dict() for a in r.alerts],
                    }
                    for r in (reports if only else sick)
                ],
                "alerts": sum(len(r.alerts) for r in sick),
            }
        )
        return EXIT_FAILED if sick else EXIT_OK
    con = console()
    if not sick:
        con.print(f"no open alerts ({len(reports)} run(s) checked in {store.root})")
        return EXIT_OK
    now = time.time()
    for r in sick:
        con.print(f"[bold]{r.name}[/] ({r.id})  {r.status}")
        for a in r.alerts:
            colour = "red" if a.severity == "error" else "yellow"
            ago = f"{(now - a.t) / 60:.0f} min ago" if now - a.t >= 60 else "just now"
            con.print(f"  [{colour}]{a.severity:7}[/] {a.kind:12} {a.message}  ({ago})")
            con.print(f"  {'':7} {'':12} [dim]{a.hint}[/]")
    return EXIT_FAILED


def add_commands(add: AddCommand) -> None:
    p = add(
        "health",
        cmd_health,
        "open alerts of every run, or of one (exit 1 when there are some)",
    )
    p.add_argument("run", nargs="?", help="one run (default: every run in the store)")
