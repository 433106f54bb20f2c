"""Script runs from the command line: `tuneterm run -- CMD ...` and `tuneterm sweep --grid
lr=1e-4,3e-4 -- python train.py --lr {lr}`. The command after `--` is argv, never a shell."""

from __future__ import annotations

import argparse
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
