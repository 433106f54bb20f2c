"""Several machines from one terminal, over plain SSH: no agent, no server.

settings.py   the `[hosts.NAME]` tables of settings.toml
transport.py  the system's `ssh`, one multiplexed connection per host, quoted argv
fleet.py      every host at once (runs, GPUs), a slow host never holding the others
follow.py     a remote run's events, resumed from the last cursor after a dropped link

What runs on the far side is tuneterm's own CLI with `--json`.
"""

from tuneterm.hosts.fleet import PROTOCOL, Fleet, HostInfo, HostRun
from tuneterm.hosts.settings import ALL, LOCAL, HostSpec, HostsSettings, load_hosts
from tuneterm.hosts.transport import HostError, HostToolMissing, HostUnreachable, Transport

__all__ = [
    "ALL",
    "LOCAL",
    "PROTOCOL",
    "Fleet",
    "HostError",
    "HostInfo",
    "HostRun",
    "HostSpec",
    "HostToolMissing",
    "HostUnreachable",
    "HostsSettings",
    "Transport",
    "load_hosts",
]
