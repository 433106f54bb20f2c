"""Real sshd "hosts" on 127.0.0.1 for the --host tests: each its own port, host key and runs
folder; one user key and a private known_hosts (host-key checking stays on). Each host's
`tuneterm` is this tree under this interpreter, so the far side runs the code under test."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from helpers.waiting import wait_for

SSHD = "/usr/sbin/sshd"
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass
class SshHost:
    name: str
    port: int
    root: Path  # its folder: config, host key, pid file
    runs: Path

    @property
    def pid(self) -> int:
        return int((self.root / "sshd.pid").read_text())

    def stop(self) -> None:
        """End this sshd and every session it serves (its children): the host is gone."""
        with contextlib.suppress(FileNotFoundError, ValueError, psutil.Error):
            proc = psutil.Process(self.pid)
            below = proc.children(recursive=True)
            proc.kill()
            for child in below:
                with contextlib.suppress(psutil.Error):
                    child.kill()


class SshFleet:
    """sshd hosts under one folder, and the settings and environment a client needs."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.hosts: dict[str, SshHost] = {}
        self.key = base / "user_key"
        self.known = base / "known_hosts"
        self.sockets = base / "ssh"
        self.sockets.mkdir(mode=0o700)
        _keygen(self.key)
        (base / "authorized_keys").write_text((base / "user_key.pub").read_text())
        self.known.write_text("")
        Path("/run/sshd").mkdir(exist_ok=True)

    def start(self, name: str) -> SshHost:
        root = self.base / name
        root.mkdir()
        (root / "runs").mkdir()
        (root / "config").mkdir()
        _keygen(root / "host_key")
        port = _free_port()
        (root / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"AuthorizedKeysFile {self.base / 'authorized_keys'}\nPasswordAuthentication no\n"
            f"UsePAM no\nStrictModes no\nPidFile {root / 'sshd.pid'}\nPrintMotd no\n"
            "PrintLastLog no\n"
        )
        host_pub = " ".join((root / "host_key.pub").read_text().split()[:2])
        with self.known.open("a") as f:
            f.write(f"[127.0.0.1]:{port} {host_pub}\n")
        subprocess.run([SSHD, "-f", str(root / "sshd_config")], check=True)
        host = SshHost(name, port, root, root / "runs")
        wait_for(lambda: (root / "sshd.pid").exists() and _accepts(port))
        self.hosts[name] = host
        return host

    def tuneterm(self, host: SshHost) -> str:
        env = f"PYTHONPATH={REPO} TUNETERM_CONFIG_DIR={host.root / 'config'} TUNETERM_OFFLINE=1"
        return f"env {env} {shlex.quote(sys.executable)} -m tuneterm"

    def table(self, host: SshHost, **extra: object) -> str:
        known = f"UserKnownHostsFile={self.known}"
        options = ["-p", str(host.port), "-i", str(self.key), "-o", known,
                   "-o", "StrictHostKeyChecking=yes"]  # fmt: skip
        keys = {
            "ssh": "127.0.0.1",
            "runs": str(host.runs),
            "tuneterm": self.tuneterm(host),
            "timeout_s": 8,
            **extra,
        }
        lines = [f"[hosts.{host.name}]", f"ssh_options = {_toml_list(options)}"]
        lines += [f"{k} = {_toml(v)}" for k, v in keys.items()]
        return "\n".join(lines) + "\n"

    def config_dir(self, where: Path, names: list[str], **extra: object) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        text = "".join(self.table(self.hosts[n], **extra) for n in names)
        (where / "settings.toml").write_text(text)
        return where

    def env(self, config: Path, local_runs: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "TUNETERM_RUNS"}
        env.update(
            TUNETERM_CONFIG_DIR=str(config),
            TUNETERM_SSH_DIR=str(self.sockets),
            TUNETERM_RUNS=str(local_runs),
            TUNETERM_OFFLINE="1",
            PYTHONPATH=str(REPO),
        )
        return env

    def masters(self) -> list[psutil.Process]:
        """The ssh master connections started with our socket folder."""
        out = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if (
                cmd[:1] == ["ssh"]
                and "ControlMaster=yes" in cmd
                and str(self.sockets) in " ".join(cmd)
            ):
                out.append(proc)
        return out

    def close(self) -> None:
        for proc in self.masters():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        for host in self.hosts.values():
            host.stop()
        shutil.rmtree(self.sockets, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _toml(value: object) -> str:
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"


class HostCli:
    """The CLI with settings naming some of the fleet's hosts."""

    def __init__(self, fleet: SshFleet, tmp: Path, names: list[str], **extra: str) -> None:
        self.local_runs = tmp / "local-runs"
        self.local_runs.mkdir(exist_ok=True)
        self.config = fleet.config_dir(tmp / "config", names, **extra)
        self.env = fleet.env(self.config, self.local_runs)

    def __call__(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "tuneterm", *args], capture_output=True,
                              text=True, env=self.env, timeout=240)  # fmt: skip
        if check is not None:
            assert proc.returncode == check, (proc.returncode, proc.stdout[-2000:], proc.stderr)
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json", check=0).stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "tuneterm", *args]
        pipe = subprocess.PIPE
        return subprocess.Popen(argv, env=self.env, stdout=pipe, stderr=pipe, text=True)


def launch(hcli: HostCli, host: str, *script: str, name: str = "") -> str:
    named = ["--name", name] if name else []
    proc = hcli("run", "--host", host, "--detach", *named, "--", sys.executable, *script, check=0)
    return proc.stdout.strip().splitlines()[-1]


def stored_status(fleet: SshFleet, host: str, run_id: str) -> str:
    """A run's status read from its host's store directly (the hosts share this disk)."""
    from tuneterm.store.runs import RunStore

    return RunStore(fleet.hosts[host].runs).info(run_id).status
