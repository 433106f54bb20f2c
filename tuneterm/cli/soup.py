"""`tuneterm soup`: average finished runs (or a sweep's) into a new run, a model soup."""

from __future__ import annotations

import argparse
import sys

from tuneterm.cli.common import EXIT_OK, AddCommand, check_name, out, store_of
from tuneterm.runs import report, soup
from tuneterm.tasks.soup.section import RECIPES


def cmd_soup(args: argparse.Namespace) -> int:
    from tuneterm.cli.runs import follow

    store = store_of(args)
    check_name(args.name or "")
    req = soup.SoupRequest(
        runs=tuple(args.runs),
        group=args.sweep or "",
        recipe=args.recipe,
        metric=args.metric or "",
        name=args.name or "",
    )
    info = soup.make(store, req)
    if args.detach:
        if args.json:
            out(report.summary(info))
        else:
            print(info.id)
            print(f"follow: tuneterm events {info.id} --follow", file=sys.stderr)
        return EXIT_OK
    return follow(store, info.id, args.json)


def add_commands(add: AddCommand) -> None:
    p = add(
        "soup",
        cmd_soup,
        "average finished runs of one start into a new run (a model soup), no training",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids or prefixes (2 or more)")
    p.add_argument("--sweep", metavar="G", help="every completed run of sweep group G")
    p.add_argument(
        "--recipe",
        default="greedy",
        choices=RECIPES,
        help="greedy (default): best first, each run kept only if validation does not get "
        "worse; uniform: the mean of all",
    )
    p.add_argument(
        "--metric", help="the val metric greedy goes by (default: the runs' train.metric)"
    )
    p.add_argument("--name", help="the soup run's name (default soup-RECIPE)")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
