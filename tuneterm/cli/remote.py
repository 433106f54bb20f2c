"""`--host NAME` (repeatable, or `all`): a command on other machines, over ssh.

The command is parsed here first, so what reaches a host is an argv this tuneterm accepts;
each host runs its own tuneterm with it. With several hosts a run is named `host:id`. Exit 7
when a host could not be reached (stderr names it), 2 when its tuneterm is missing or old.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from tuneterm.cli.common import EXIT_INVALID, EXIT_OK, json_text, out
from tuneterm.cli.hosts import EXIT_HOST
from tuneterm.cli.inspect import _fmt_event
from tuneterm.config import ConfigError, ConfigIssue
from tuneterm.hosts import Fleet, HostError, HostSpec, HostToolMissing, Transport, load_hosts
from tuneterm.hosts.follow import follow_events
from tuneterm.hosts.transport import Reply
from tuneterm.store.runs import ENV_RUNS

HOST_COMMANDS = ("ls", "show", "events", "compare", "health", "stop", "kill", "resume", "rm",
                 "label", "run", "tui")  # fmt: skip
HOST_HELP = "on this host of settings.toml (repeatable; `all`: this machine and every host)"
VALUED = ("--host", "--runs-dir")  # this side's flags, never sent


def add_host_flag(commands: dict[str, argparse.ArgumentParser]) -> None:
    for name in HOST_COMMANDS:
        commands[name].add_argument("--host", action="append", metavar="NAME", help=HOST_HELP)


def _strip(own: Sequence[str]) -> list[str]:
    """The argv without this side's --host and --runs-dir (each host has its own)."""
    rest: list[str] = []
    skip = False
    for word in own:
        if skip:
            skip = False
        elif word in VALUED:
            skip = True
        elif not any(word.startswith(f"{flag}=") for flag in VALUED):
            rest.append(word)
    return rest


def _host_error(exc: HostError, as_json: bool) -> int:
    code = EXIT_INVALID if isinstance(exc, HostToolMissing) else EXIT_HOST
    print(f"tuneterm: {exc}", file=sys.stderr)
    if as_json:
        out({"error": str(exc), "host": exc.host, "exit_code": code})
    return code


def dispatch(args: argparse.Namespace, own: Sequence[str]) -> int:
    """Run the parsed command on the hosts `--host` names."""
    local_runs = args.runs_dir or os.environ.get(ENV_RUNS, "")
    specs = load_hosts().pick(args.host, local_runs)
    as_json = bool(getattr(args, "json", False))
    rest = _strip(own)
    if args.command == "tui":
        from tuneterm.cli.common import open_tui

        return open_tui(args, specs)
    try:
        if args.command == "ls" or (args.command == "health" and not args.run):
            return _each_host(args, specs, rest)
        if args.command == "run":
            return _run(args, specs, rest)
        return _on_run_hosts(args, specs, rest)
    except HostError as exc:
        return _host_error(exc, as_json)


def _each_host(args: argparse.Namespace, specs: list[HostSpec], rest: list[str]) -> int:
    """ls and health: every host's JSON, merged, each run named `host:id`."""
    fleet = Fleet(specs)
    if args.command == "ls":
        extra = ["--status", args.status] if args.status else []
        runs, errors = fleet.runs(extra)
        rows = [{**r.row, "host": r.host, "id": r.name} for r in runs]
        if args.json:
            out(rows)
        else:
            _print_ls(rows)
        sick = False
    else:
        results = fleet.map(lambda t: t.call(["health", "--json"]))
        rows, errors = _health_rows(results)
        sick = any(r["alerts"] for r in rows)
        if args.json:
            out({"runs": rows, "alerts": sum(len(r["alerts"]) for r in rows)})
        else:
            for r in rows:
                kinds = ", ".join(a["kind"] for a in r["alerts"])
                print(f"{r['id']}\t{r['status']}\t{kinds}")
    for exc in errors.values():
        print(f"tuneterm: {exc}", file=sys.stderr)
    if errors:
        return max(
            EXIT_INVALID if isinstance(e, HostToolMissing) else EXIT_HOST for e in errors.values()
        )
    return 1 if sick else EXIT_OK


def _health_rows(
    results: dict[str, Reply | HostError],
) -> tuple[list[dict[str, Any]], dict[str, HostError]]:
    import json

    rows: list[dict[str, Any]] = []
    errors: dict[str, HostError] = {}
    for host, reply in results.items():
        if isinstance(reply, HostError):
            errors[host] = reply
            continue
        try:
            data = json.loads(reply.stdout)
        except json.JSONDecodeError:
            errors[host] = HostError(host, f"health gave no JSON (exit {reply.code})")
            continue
        rows += [{**r, "host": host, "id": f"{host}:{r['id']}"} for r in data.get("runs", [])]
    return rows, errors


LS_COLUMNS = ("host", "id", "name", "status", "model", "epoch", "best_metric", "elapsed")


def _print_ls(rows: list[dict[str, Any]]) -> None:
    """Tab-separated, every value whole: a HOST column, and ids as `host:id`."""
    print("\t".join(c.upper() for c in LS_COLUMNS))
    for r in rows:
        best = r.get("best_metric") or {}
        cells = {**r, "best_metric": best.get("text", "") if isinstance(best, dict) else ""}
        print("\t".join(_cell(cells.get(c)) for c in LS_COLUMNS), flush=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("\t", " ").replace("\n", " ")


def _run(args: argparse.Namespace, specs: list[HostSpec], rest: list[str]) -> int:
    if len(specs) != 1:
        raise ConfigError(
            [ConfigIssue("--host", args.host, "run launches on one host; name exactly one")]
        )
    words = [*rest, "--", *args.script_command] if args.script_command else rest
    return forward(Transport(specs[0]), words)


def _split_run(name: str, specs: list[HostSpec]) -> tuple[HostSpec, str]:
    """`gpu2:abc` -> (gpu2, abc); a bare run when --host names exactly one host."""
    host, sep, run_id = name.partition(":")
    by_name = {s.name: s for s in specs}
    if sep and host in by_name:
        return by_name[host], run_id
    if len(specs) == 1:
        return specs[0], name
    raise ConfigError(
        [
            ConfigIssue(
                "run",
                name,
                f"which host? name it HOST:{name}, HOST one of {', '.join(by_name)}",
            )
        ]
    )


def _on_run_hosts(args: argparse.Namespace, specs: list[HostSpec], rest: list[str]) -> int:
    """Commands that name runs: each on its run's own host."""
    names = list(args.runs) if hasattr(args, "runs") else [args.run]
    routed = [(name, *_split_run(name, specs)) for name in names]
    hosts = {spec.name: spec for _, spec, _ in routed}
    if args.command == "compare" and len(hosts) > 1:
        from tuneterm.cli.remote_compare import compare_across

        return compare_across(args, [(spec, run_id) for _, spec, run_id in routed])
    code = EXIT_OK
    for host, spec in hosts.items():
        mine = {name: run_id for name, s, run_id in routed if s.name == host}
        words = [mine.get(w, w) for w in rest if w in mine or w not in names]
        if args.command == "events":
            code = max(code, _events(args, Transport(spec), mine[names[0]]))
        else:
            code = max(code, forward(Transport(spec), words))
    return code


def forward(t: Transport, words: Sequence[str]) -> int:
    """The command there, its output here as it comes; its exit status is ours."""
    t.ensure_master()
    proc = subprocess.run(t.argv(words), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)  # fmt: skip
    t.check(Reply(proc.returncode, "", proc.stderr))
    sys.stderr.write(proc.stderr)
    return proc.returncode


def _events(args: argparse.Namespace, t: Transport, run_id: str) -> int:
    def emit(e: dict[str, Any]) -> None:
        print(json_text(e) if args.json else _fmt_event(e), flush=True)

    code, err = follow_events(
        t, run_id, emit, after=args.after, follow=args.follow, kinds=args.kind or ()
    )
    sys.stderr.write(err)
    return code
