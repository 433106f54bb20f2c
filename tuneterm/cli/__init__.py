"""The headless CLI: everything the TUI does, for scripts. Thin over tuneterm.runs and the store.

Commands live in modules by group (runs, inspect, models, queue, sweep, demo); this module
assembles the parser and maps errors to exit codes (tuneterm.cli.common):
0 ok (run completed); 1 run failed or crashed, or engine did not start;
2 invalid config or input (nothing created); 3 action does not fit the run's status;
4 run was stopped before completing; 7 a host could not be reached (--host);
130 interrupted while following.
"""

from __future__ import annotations

import argparse
import os
import sys

from tuneterm import __version__
from tuneterm.cli import (
    demo,
    health,
    hosts,
    inspect,
    models,
    queue,
    remote,
    runs,
    scripts,
    soup,
    sweep,
    watching,
)
from tuneterm.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_STATE,
    Command,
    fail,
    open_tui,
)
from tuneterm.cli.scripts import split_command
from tuneterm.config import ConfigError
from tuneterm.runs.lifecycle import LaunchError, RunStateError
from tuneterm.runs.runqueue import QueueStateError, SchedulerError
from tuneterm.slurm import SlurmError
from tuneterm.store.meta import UnreadableRun
from tuneterm.store.runs import AmbiguousRun, RunNotFound

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--runs-dir",
        default=argparse.SUPPRESS,
        help="the run store (default: $TUNETERM_RUNS or ./runs)",
    )
    ap = argparse.ArgumentParser(
        prog="tuneterm",
        parents=[common],
        description="Manage PyTorch fine-tuning runs from the terminal.",
    )
    ap.add_argument("--version", action="version", version=f"tuneterm {__version__}")
    sub = ap.add_subparsers(
        dest="command", metavar="COMMAND", help="what to do (none: open the terminal UI)"
    )

    def add(
        name: str, func: Command, help: str, json_flag: bool = True, store: bool = True
    ) -> argparse.ArgumentParser:
        """`store = False`: the command reads no runs folder, so it takes no --runs-dir."""
        p = sub.add_parser(name, parents=[common] if store else [], help=help, description=help)
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    groups = (runs, inspect, health, models, demo, queue, sweep, soup, scripts, hosts, watching)
    for group in groups:
        group.add_commands(add)
    remote.add_host_flag(sub.choices)
    return ap


def main(argv: list[str] | None = None) -> int:
    own, command = split_command(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(own)
    args.script_command = command  # `tuneterm run/sweep ... -- CMD`: a script run
    if command is not None and args.command not in ("run", "sweep"):
        return fail(f"{args.command} takes no command after --", EXIT_INVALID, False)
    if not hasattr(args, "runs_dir"):
        args.runs_dir = None
    if args.command is None:
        return open_tui(args)
    as_json = getattr(args, "json", False)

    try:
        if getattr(args, "host", None) and args.command != "hosts":
            return remote.dispatch(args, own)
        return int(args.func(args))
    except ConfigError as exc:
        return fail(str(exc), EXIT_INVALID, as_json)
    except (RunNotFound, AmbiguousRun) as exc:
        return fail(str(exc.args[0]) if exc.args else str(exc), EXIT_INVALID, as_json)
    except ValueError as exc:  # e.g. a run prefix with characters ids never have
        return fail(str(exc), EXIT_INVALID, as_json)
    except (RunStateError, QueueStateError) as exc:
        return fail(str(exc), EXIT_STATE, as_json)
    except UnreadableRun as exc:  # a damaged event segment met while reading; never rewritten
        return fail(f"the run is unreadable: {exc.reason}", EXIT_FAILED, as_json)
    except (LaunchError, SchedulerError, SlurmError) as exc:
        return fail(str(exc), EXIT_FAILED, as_json)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `tuneterm ls | head`: the reader is gone, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
