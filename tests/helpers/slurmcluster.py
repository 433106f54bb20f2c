"""A private single-node Slurm cluster for the tests and the bench: the real daemons (munged,
slurmctld, slurmd) of Debian's slurm-wlm, with their own config, key, sockets, ports and
folders under one directory, so it never touches /etc or another cluster on the machine.

`SLURM_CONF` points every Slurm command at the private slurm.conf; munge is reached through
`AuthInfo=socket=...`. The daemons are ended by the pids they wrote.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 90.0


class ClusterError(RuntimeError):
    """The cluster could not start; the message says why (and where its logs are)."""


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    env: dict[str, str]
    partition: str = "debug"
    pid_files: list[Path] = field(default_factory=list)

    @property
    def jobcomp(self) -> Path:
        return self.root / "jobcomp.txt"

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, timeout=60)

    def stop(self) -> None:
        """Cancel every job, then end the daemons by their pids (slurmd, slurmctld, munged)."""
        self.run("scancel", "--user", "root")
        for pid_file in reversed(self.pid_files):
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, host: str, cpus: int, mem_mb: int, socket_path: Path) -> str:
    ctld, slurmd = _free_port(), _free_port()
    return "\n".join(
        [
            "ClusterName=tuneterm-test",
            f"SlurmctldHost={host}",
            f"SlurmctldPort={ctld}",
            f"SlurmdPort={slurmd}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={socket_path}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root / 'jobcomp.txt'}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "ReturnToService=2",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=1",
            "KillWait=5",
            "MinJobAge=300",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def start_cluster(root: Path) -> SlurmCluster:
    """Write the config, start the daemons and wait until the node is idle; ClusterError (with
    the reason) when any of that fails."""
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            raise ClusterError(f"{tool} is not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise ClusterError("starting slurmd and munged needs root")
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(exist_ok=True)
    os.chmod(root, 0o755)
    munge = root / "munge"
    os.chmod(munge, 0o700)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    sock = munge / "munge.socket"
    host = socket.gethostname().split(".")[0]
    mem_mb = max(1024, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 2048)
    conf = root / "slurm.conf"
    conf.write_text(_config(root, host, os.cpu_count() or 1, mem_mb, sock))
    env = dict(os.environ, SLURM_CONF=str(conf))
    cluster = SlurmCluster(root, conf, env)
    daemons = [
        (
            [
                "munged",
                "--force",
                f"--socket={sock}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            munge / "munged.pid",
        ),
        (["slurmctld", "-f", str(conf)], root / "slurmctld.pid"),
        (["slurmd", "-f", str(conf)], root / "slurmd.pid"),
    ]
    try:
        for cmd, pid_file in daemons:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
            if done.returncode != 0:
                raise ClusterError(
                    f"{cmd[0]} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
                    f" (logs in {root})"
                )
            cluster.pid_files.append(pid_file)
            _wait_for(lambda f=pid_file: f.is_file() and f.read_text().strip() != "", cmd[0], root)
        _wait_for(lambda: _node_idle(cluster), "the node to be idle in sinfo", root)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _node_idle(cluster: SlurmCluster) -> bool:
    done = cluster.run("sinfo", "--noheader", "--format=%t")
    return done.returncode == 0 and done.stdout.strip() == "idle"


def _wait_for(ready: Callable[[], bool], what: str, root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    logs = ""
    for name in ("slurmctld.log", "slurmd.log", "munge/munged.log"):
        path = root / name
        if path.is_file():
            logs += f"\n--- {name}:\n" + "\n".join(path.read_text().splitlines()[-10:])
    raise ClusterError(f"waited {START_TIMEOUT:.0f} s for {what}{logs}")
