"""Every command's --help describes each of its options and arguments, and bad choices are
refused with exit 2 naming what is allowed: walked over the real parser, and run as a user
would run the CLI."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from helpers.cli import Cli

from tuneterm.cli import build_parser
from tuneterm.store.meta import STATUSES


def parsers(
    p: argparse.ArgumentParser, name: str = "tuneterm"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from parsers(child, f"{name} {sub}")


def test_every_option_and_argument_of_every_command_has_help() -> None:
    missing = [
        f"{name}: {'/'.join(a.option_strings) or a.dest}"
        for name, p in parsers(build_parser())
        for a in p._actions
        if not isinstance(a, argparse._HelpAction | argparse._VersionAction)
        and (not a.help or a.help == argparse.SUPPRESS)
    ]
    assert missing == []


def test_commands_that_read_no_runs_folder_take_no_runs_dir_and_export_has_json() -> None:
    by_name = dict(parsers(build_parser()))
    for name in ("tuneterm init", "tuneterm models"):
        flags = {f for a in by_name[name]._actions for f in a.option_strings}
        assert "--runs-dir" not in flags, name
    export = {f for a in by_name["tuneterm export"]._actions for f in a.option_strings}
    assert "--json" in export
    (scale,) = [a for a in by_name["tuneterm sweep"]._actions if "--range" in a.option_strings]
    assert all(s in (scale.help or "") for s in ("lin", "log", "int", "logint"))


def test_ls_with_an_unknown_status_exits_2_naming_the_statuses(cli: Cli) -> None:
    done = cli("ls", "--status", "bogus", check=2)
    assert "bogus" in done.stderr and all(s in done.stderr for s in STATUSES), done.stderr
    assert "no runs" not in done.stdout


@pytest.mark.parametrize("command", ["init", "models"])
def test_init_and_models_refuse_a_runs_dir_they_would_not_use(cli: Cli, command: str) -> None:
    done = cli(command, "--runs-dir", "/nonexistent", check=2)
    assert "--runs-dir" in done.stderr
