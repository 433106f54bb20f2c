"""Several hosts at once: every call in parallel, one thread per host, each bounded by its
host's timeout, so a host that stops answering never holds the others up.

Everything crosses the link as tuneterm's own `--json` output (`ls`, `show`, `gpus`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tuneterm.hosts.settings import HostSpec
from tuneterm.hosts.transport import HostError, Reply, Transport

T = TypeVar("T")
PROTOCOL = 1  # the JSON `gpus --json` and `events --after` speak; raised when they change


@dataclass(frozen=True)
class HostRun:
    """One run on one host: its `ls --json` row, named `host:id`."""

    host: str
    row: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.row.get("id", ""))

    @property
    def name(self) -> str:
        return f"{self.host}:{self.id}"


@dataclass(frozen=True)
class HostInfo:
    """What `gpus --json` says of a host: version, GPUs, live runs."""

    host: str
    version: str = ""
    protocol: int = 0
    hostname: str = ""
    gpus: list[dict[str, Any]] = field(default_factory=list)
    nvml: str = ""
    live: int = 0
    runs: int = 0
    error: str = ""  # "" when the host answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "reachable": not self.error,
            "error": self.error,
            "version": self.version,
            "protocol": self.protocol,
            "hostname": self.hostname,
            "gpus": self.gpus,
            "nvml": self.nvml,
            "live": self.live,
            "runs": self.runs,
        }


def host_info(host: str, data: dict[str, Any]) -> HostInfo:
    """A `gpus --json` answer, read."""
    return HostInfo(
        host=host,
        version=str(data.get("version", "")),
        protocol=int(data.get("protocol", 0)),
        hostname=str(data.get("hostname", "")),
        gpus=list(data.get("gpus", [])),
        nvml=str(data.get("nvml", "")),
        live=int(data.get("live", 0)),
        runs=int(data.get("runs", 0)),
    )


def parse_json(host: str, reply: Reply) -> Any:
    try:
        return json.loads(reply.stdout)
    except json.JSONDecodeError:
        detail = (reply.stderr.strip().splitlines() or ["no JSON on stdout"])[-1]
        raise HostError(host, f"exit {reply.code}: {detail}") from None


class Fleet:
    def __init__(self, specs: Sequence[HostSpec]) -> None:
        self.transports = {s.name: Transport(s) for s in specs}

    @property
    def names(self) -> list[str]:
        return list(self.transports)

    def map(self, fn: Callable[[Transport], T]) -> dict[str, T | HostError]:
        """`fn` on every host at once; a host's HostError is its result, never raised."""

        def one(t: Transport) -> T | HostError:
            try:
                return fn(t)
            except HostError as exc:
                return exc

        if len(self.transports) == 1:
            (t,) = self.transports.values()
            return {t.spec.name: one(t)}
        with ThreadPoolExecutor(max_workers=len(self.transports)) as pool:
            futures = {name: pool.submit(one, t) for name, t in self.transports.items()}
            return {name: f.result() for name, f in futures.items()}

    def runs(self, extra: Sequence[str] = ()) -> tuple[list[HostRun], dict[str, HostError]]:
        """Every host's runs (`ls --json`), host by host in settings order."""
        results = self.map(lambda t: _ls(t, extra))
        runs: list[HostRun] = []
        errors: dict[str, HostError] = {}
        for name, result in results.items():
            if isinstance(result, HostError):
                errors[name] = result
            else:
                runs += [HostRun(name, row) for row in result]
        return runs, errors

    def info(self) -> dict[str, HostInfo]:
        def one(t: Transport) -> HostInfo:
            return host_info(t.spec.name, parse_json(t.spec.name, t.call(["gpus", "--json"])))

        out = {}
        for name, result in self.map(one).items():
            if isinstance(result, HostError):
                out[name] = HostInfo(name, error=str(result).removeprefix(f"host {name}: "))
            else:
                out[name] = result
        return out

    def close(self) -> None:
        for t in self.transports.values():
            t.close()


def _ls(t: Transport, extra: Sequence[str]) -> list[dict[str, Any]]:
    data = parse_json(t.spec.name, t.call(["ls", "--json", *extra]))
    if not isinstance(data, list):
        raise HostError(t.spec.name, f"`ls --json` gave {type(data).__name__}, not a list")
    return data
