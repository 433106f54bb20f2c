"""`[hosts.NAME]` tables of settings.toml: which machines tuneterm reaches, and how.

    [hosts.gpu2]
    ssh = "gpu2"                          # a Host of ~/.ssh/config, or me@10.0.0.7
    ssh_options = ["-p", "2222"]          # further ssh arguments (optional)
    runs = "/data/runs"                   # the runs folder there (optional)
    tuneterm = "~/venv/bin/tuneterm"      # the command there (optional; default tuneterm)
    workdir = "~/project"                 # where `run -- CMD` starts there (optional)
    timeout_s = 10                        # a call that takes longer: unreachable (optional)

Every error names the field and the value; a bad table stops the command (exit 2).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.config.userdir import config_dir
from tuneterm.errors import ConfigError, ConfigIssue

LOCAL = "local"  # the machine tuneterm runs on; `--host all` means it and every [hosts.NAME]
ALL = "all"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEYS = ("ssh", "ssh_options", "runs", "tuneterm", "workdir", "timeout_s")
# ssh options that would turn host-key checking off or run a local command: never taken
UNSAFE_OPTIONS = re.compile(
    r"stricthostkeychecking\s*=?\s*(no|off|accept-new)|userknownhostsfile\s*=?\s*/dev/null"
    r"|localcommand|permitlocalcommand|proxycommand",
    re.IGNORECASE,
)
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HostSpec:
    name: str
    ssh: str = ""  # "" for the local machine
    ssh_options: tuple[str, ...] = ()
    runs: str = ""
    tuneterm: tuple[str, ...] = ("tuneterm",)
    workdir: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def local(self) -> bool:
        return not self.ssh


@dataclass
class HostsSettings:
    hosts: dict[str, HostSpec] = field(default_factory=dict)
    source: str = ""

    def names(self) -> list[str]:
        return list(self.hosts)

    def pick(self, wanted: list[str], local_runs: str = "") -> list[HostSpec]:
        """The hosts `--host` names, in order, each once; `all` is the local machine and
        every configured host."""
        out: dict[str, HostSpec] = {}
        for name in wanted:
            if name == ALL:
                out.setdefault(LOCAL, HostSpec(LOCAL, runs=local_runs))
                out.update((n, h) for n, h in self.hosts.items() if n not in out)
            elif name == LOCAL:
                out.setdefault(LOCAL, HostSpec(LOCAL, runs=local_runs))
            elif name in self.hosts:
                out.setdefault(name, self.hosts[name])
            else:
                known = ", ".join([LOCAL, ALL, *self.hosts])
                where = self.source or "settings.toml"
                raise ConfigError(
                    [
                        ConfigIssue(
                            "--host",
                            name,
                            f"no such host; known: {known} (add a [hosts.{name}] table to {where})",
                        )
                    ]
                )
        return list(out.values())


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def load_hosts(path: Path | None = None) -> HostsSettings:
    path = path or settings_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return HostsSettings(source=str(path))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue("settings.toml", str(path), str(exc))]) from None
    table = data.get("hosts", {})
    if not isinstance(table, dict):
        raise ConfigError([ConfigIssue("hosts", table, "must be a table of [hosts.NAME]")])
    issues: list[ConfigIssue] = []
    hosts = {}
    for name, raw in table.items():
        spec = _spec(name, raw, issues)
        if spec is not None:
            hosts[name] = spec
    if issues:
        raise ConfigError(issues, str(path))
    return HostsSettings(hosts, str(path))


def _spec(name: str, raw: Any, issues: list[ConfigIssue]) -> HostSpec | None:
    where = f"hosts.{name}"
    if not NAME_RE.match(name) or name in (LOCAL, ALL):
        issues.append(
            ConfigIssue(
                "hosts",
                name,
                f"a host name is letters, digits, '.', '_' or '-' and not {LOCAL!r} or {ALL!r}",
            )
        )
        return None
    if not isinstance(raw, dict):
        issues.append(ConfigIssue(where, raw, "must be a table with at least `ssh`"))
        return None
    before = len(issues)
    for key in set(raw) - set(KEYS):
        issues.append(ConfigIssue(f"{where}.{key}", raw[key], f"unknown key; known: {KEYS}"))
    ssh = raw.get("ssh")
    if not isinstance(ssh, str) or not ssh.strip() or ssh.startswith("-") or " " in ssh:
        issues.append(
            ConfigIssue(f"{where}.ssh", ssh, "must be an ssh target such as gpu2 or me@10.0.0.7")
        )
    options = _options(where, raw.get("ssh_options", []), issues)
    strings = _strings(where, raw, issues)
    timeout = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        issues.append(ConfigIssue(f"{where}.timeout_s", timeout, "must be a number of seconds > 0"))
    command: list[str] = []
    try:
        command = shlex.split(strings["tuneterm"])
    except ValueError as exc:
        issues.append(ConfigIssue(f"{where}.tuneterm", strings["tuneterm"], str(exc)))
    if len(issues) > before:
        return None
    return HostSpec(
        name=name,
        ssh=str(ssh),
        ssh_options=tuple(options),
        runs=strings["runs"],
        tuneterm=tuple(command) or ("tuneterm",),
        workdir=strings["workdir"],
        timeout_s=float(timeout),
    )


def _options(where: str, options: Any, issues: list[ConfigIssue]) -> list[str]:
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        issues.append(ConfigIssue(f"{where}.ssh_options", options, "must be a list of strings"))
        return []
    for opt in options:
        if UNSAFE_OPTIONS.search(opt):
            issues.append(
                ConfigIssue(
                    f"{where}.ssh_options",
                    opt,
                    "tuneterm never turns host-key checking off nor runs local commands; "
                    "add the host key to known_hosts instead",
                )
            )
    return list(options)


def _strings(where: str, raw: dict[str, Any], issues: list[ConfigIssue]) -> dict[str, str]:
    out = {}
    for key in ("runs", "tuneterm", "workdir"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            issues.append(ConfigIssue(f"{where}.{key}", value, "must be a string"))
            value = ""
        out[key] = value
    return out
