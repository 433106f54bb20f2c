"""Script runs from the command line: `tuneterm run -- CMD ...` and `tuneterm sweep --grid
lr=1e-4,3e-4 -- python train.py --lr {lr}`. The command after `--` is argv, never a shell."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from tuneterm.config import (
    ConfigError,
    ConfigIssue,
    RunConfig,
    apply_overrides,
    from_dict,
    parse_toml,
)
from tuneterm.config.scriptargs import fill, launch_folder, placeholders
from tuneterm.script.formats import read_line, read_patterns
from tuneterm.script.metrics import MetricBook
from tuneterm.script.output import LineSplitter


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(tuneterm's own arguments, the script's command after the first `--`, or None)."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def _base(args: argparse.Namespace) -> dict[str, Any]:
    if not args.config:
        return {}
    path = Path(args.config)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue("config", str(path), f"cannot read: {exc.strerror}")]
        ) from None
    return parse_toml(text, str(path))


def script_dict(args: argparse.Namespace, command: list[str] | None) -> dict[str, Any] | None:
    """The config of `tuneterm run/sweep [CONFIG] [-- CMD]` as a dict before validation, when it
    is a script run (a command after `--`, or a config with a [script] command); else None."""
    base = _base(args)
    if command is not None:
        if not command:
            raise ConfigError(
                [
                    ConfigIssue(
                        "--", "", "nothing after --; give the command, e.g. -- python train.py"
                    )
                ]
            )
        base = {**base, "script": {**base.get("script", {}), "command": command}}
    script = base.get("script")
    if not (isinstance(script, dict) and script.get("command")):
        return None
    data = apply_overrides(base, args.set)
    if isinstance(data.get("script"), dict):  # the launch folder, recorded for resume and queue
        cwd = str(data["script"].get("cwd") or "")
        data["script"] = {**data["script"], "cwd": launch_folder(cwd, Path.cwd())}
    if getattr(args, "tag", None):
        run = dict(data.get("run") or {})
        run["tags"] = sorted({*run.get("tags", []), *args.tag})
        data["run"] = run
    gpus = getattr(args, "gpus", None)
    if gpus is not None:  # a script run: which GPUs it sees
        sc = dict(data["script"])
        sc["env"] = {**sc.get("env", {}), "CUDA_VISIBLE_DEVICES": str(gpus)}
        data["script"] = sc
    return data


def script_config(args: argparse.Namespace, command: list[str] | None) -> RunConfig | None:
    data = script_dict(args, command)
    return None if data is None else from_dict(data, args.config or "the command line")


def swept_args(command: list[str], keys: list[str]) -> dict[str, str]:
    """Which `--name` argument each sweep key fills: `--learning_rate={lr}` and
    `--learning_rate {lr}` both give lr -> learning_rate (as `script.args` names it)."""
    out: dict[str, str] = {}
    for i, arg in enumerate(command):
        for key in keys:
            if "{" + key + "}" not in arg or key in out:
                continue
            flag, eq, _ = arg.partition("=")
            if eq and flag.startswith("-"):
                out[key] = flag.lstrip("-").replace("-", "_")
            elif i > 0 and command[i - 1].startswith("-") and "=" not in command[i - 1]:
                out[key] = command[i - 1].lstrip("-").replace("-", "_")
    return out


def sweep_configs(
    data: dict[str, Any], points: list[dict[str, str]], keys: list[str]
) -> list[RunConfig]:
    """One config per sweep point: its values filled into the command's `{key}` fields. A
    field no --grid key fills, or a key no field uses, is refused before anything is made."""
    command = [str(a) for a in data["script"]["command"]]
    try:
        fields = placeholders(command)
    except ValueError as exc:
        raise ConfigError([ConfigIssue("--", " ".join(command), f"bad template: {exc}")]) from None
    unfilled = [f for f in fields if f not in keys]
    if unfilled:
        raise ConfigError(
            [
                ConfigIssue(
                    "--",
                    "{" + unfilled[0] + "}",
                    f"no --grid key fills this placeholder; keys: {', '.join(keys) or 'none'}",
                )
            ]
        )
    unused = [k for k in keys if k not in fields]
    if unused:
        raise ConfigError(
            [ConfigIssue("--grid", unused[0], "the command has no {" + unused[0] + "} to fill")]
        )
    out = []
    for values in points:
        filled = fill(command, values)
        out.append(from_dict({**data, "script": {**data["script"], "command": filled}}))
    return out


# -- tuneterm parse ------------------------------------------------------------------------------
def _parse_setup(args: argparse.Namespace) -> tuple[list[re.Pattern[str]], str]:
    """The patterns (`--pattern`, then a config's [script] patterns) and `[script] metric`."""
    sources = list(args.pattern)
    metric = ""
    if args.config:
        cfg = from_dict(_base(args), args.config)
        sources += cfg.script.patterns
        metric = cfg.script.metric
    patterns = []
    for source in sources:
        try:
            patterns.append(re.compile(source))
        except re.error as exc:
            raise ConfigError([ConfigIssue("--pattern", source, f"not a regex: {exc}")]) from None
    return patterns, metric


def _log_bytes(name: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue("FILE", name, f"cannot read: {exc.strerror}")]) from None


def parse_log(
    raw: bytes, patterns: list[re.Pattern[str]], book: MetricBook
) -> list[dict[str, Any]]:
    """Each record a run would read from `raw`, split into lines as the supervisor splits
    output (a \\r redraw keeps its last state); `book` notes the names."""
    splitter = LineSplitter()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(splitter.feed(raw) + splitter.close(), start=1):
        reading = read_patterns(line, patterns) if patterns else read_line(line)
        if reading is None or reading.record is None or not reading.record.metrics:
            continue
        rec = reading.record
        book.see(list(rec.metrics))
        records.append(
            {
                "line": number,
                "format": reading.source,
                "step": rec.step,
                "epoch": rec.epoch,
                "phase": rec.phase or None,
                "metrics": rec.metrics,
            }
        )
    return records


def cmd_parse(args: argparse.Namespace) -> int:
    """What a script run would read from a log: each record, its format, step and metrics, and
    the metric that would rank the run; `--pattern`s (or a config's [script] patterns) replace
    the built-in formats, as they do in a run."""
    from tuneterm.cli.common import EXIT_OK, console, out

    patterns, metric = _parse_setup(args)
    book = MetricBook(configured=metric)
    records = parse_log(_log_bytes(args.file), patterns, book)
    if args.json:
        out({"file": args.file, "metric": book.best(), "records": records})
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{args.file}: {len(records)} records", box=None, header_style="bold")
    for col in ("line", "format", "step", "metrics"):
        table.add_column(col, no_wrap=col != "metrics")
    for r in records:
        shown = "  ".join(f"{k} {v:.6g}" for k, v in r["metrics"].items())
        step = "-" if r["step"] is None else str(r["step"])
        table.add_row(str(r["line"]), r["format"], step, escape(shown))
    con = console()
    con.print(table)
    con.print(f"the run's metric: {escape(book.best() or 'none yet')}")
    return EXIT_OK


def add_commands(add: Any) -> None:
    p = add("parse", cmd_parse, "show the metrics tuneterm would read from a script's output")
    p.add_argument("file", metavar="FILE", help="a log of the script's output, or - for stdin")
    p.add_argument(
        "--pattern",
        action="append",
        default=[],
        help="a regex whose named groups are metrics (as [script] patterns); repeatable",
    )
    p.add_argument("--config", help="a run config: its [script] patterns and metric")
