"""`tuneterm watch DIR...`: name folders whose runs of other tools (TensorBoard, HF Trainer,
Lightning, MLflow, JSON lines) show beside tuneterm's own (tuneterm.sources)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from tuneterm.cli.common import EXIT_OK, AddCommand, out
from tuneterm.sources import scan, watch_paths
from tuneterm.sources.settings import load_settings, settings_path


def cmd_watch(args: argparse.Namespace) -> int:
    added = watch_paths(args.dirs) if args.dirs else []
    settings = load_settings()
    if settings.problem:
        print(f"tuneterm: {settings.problem}", file=sys.stderr)
    folders = settings.paths
    found = scan(folders)
    if args.json:
        out(
            {
                "settings": str(settings_path()),
                "added": [str(p) for p in added],
                "folders": [str(p) for p in folders],
                "runs": [{"id": f.id, "source": f.source, "path": str(f.path)} for f in found],
            }
        )
        return EXIT_OK
    for p in added:
        print(f"watching {p} (added to {settings_path()})")
    if not folders:
        print("no folders watched: `tuneterm watch DIR...` adds some")
        return EXIT_OK
    counts = Counter(f.source for f in found)
    for folder in folders:
        here = sum(1 for f in found if f.path.is_relative_to(folder))
        print(f"{folder}: {here} run{'s' if here != 1 else ''}")
    if counts:
        print("by source: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    p = add(
        "watch",
        cmd_watch,
        "show the runs of other tools lying in folders (TensorBoard, HF Trainer, Lightning, "
        "MLflow, JSON lines) beside tuneterm's own, read in place; none: the folders watched",
        store=False,
    )
    p.add_argument(
        "dirs", nargs="*", metavar="DIR", help="a folder to watch (kept in settings.toml)"
    )
