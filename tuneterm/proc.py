"""Process identity: a run's process is known by pid, start time and command line together.

A pid alone is not enough: after the engine dies the kernel may hand the pid to any other
process. We never count such a process as the run's, and never signal it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import psutil

ENGINE_MARKER = "tuneterm.engine"
SCRIPT_MARKER = "tuneterm.script"  # the supervisor of a script run (tuneterm/script/)
# A run's own process carries one of these in its command line.
RUN_MARKERS = (ENGINE_MARKER, SCRIPT_MARKER)
# psutil derives the start time from the boot time, which moves when the wall clock is stepped
# (NTP, VM resume). A reused pid belongs to a process started after the engine died, seconds or
# more later, and must also carry the engine marker and this run's id in its command line.
_START_TOLERANCE = 2.0


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    start_time: float
    run_id: str  # must appear in the command line (the queue scheduler: its runs folder)
    marker: str = ENGINE_MARKER  # so must this: the module the process runs

    @classmethod
    def current(cls, run_id: str, marker: str = ENGINE_MARKER) -> ProcessIdentity:
        me = psutil.Process(os.getpid())
        return cls(me.pid, me.create_time(), run_id, marker)


def _process(ident: ProcessIdentity) -> psutil.Process | None:
    """The live process behind `ident`, or None if it is gone or is someone else."""
    if ident.pid <= 0:
        return None
    try:
        proc = psutil.Process(ident.pid)
        if abs(proc.create_time() - ident.start_time) > _START_TOLERANCE:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    markers = RUN_MARKERS if ident.marker == ENGINE_MARKER else (ident.marker,)
    if not any(m in cmdline for m in markers) or ident.run_id not in cmdline:
        return None
    return proc


def is_alive(ident: ProcessIdentity) -> bool:
    return _process(ident) is not None


def send_signal(ident: ProcessIdentity, sig: signal.Signals) -> bool:
    """Signal the run's own process; False (and nothing sent) if it is not alive or not ours."""
    proc = _process(ident)
    if proc is None:
        return False
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return True


def wait_gone(ident: ProcessIdentity, timeout: float) -> bool:
    proc = _process(ident)
    if proc is None:
        return True
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        return not is_alive(ident)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, ChildProcessError):
        pass
    return True


def is_torchrun(ident: ProcessIdentity) -> bool:
    """Whether the run's own process is a torchrun agent (a distributed run)."""
    proc = _process(ident)
    try:
        return proc is not None and "torch.distributed.run" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def signal_workers(ident: ProcessIdentity, sig: signal.Signals) -> bool:
    """Signal the engine ranks a verified torchrun agent started (its direct children that
    carry the engine marker and this run's id), not the agent: the ranks agree on a step to
    stop at, rank 0 checkpoints, and the agent then exits by itself. Signalling the agent
    instead would make it give the ranks only a grace period before killing them."""
    proc = _process(ident)
    if proc is None:
        return False
    try:
        workers = [
            c
            for c in proc.children()
            if ENGINE_MARKER in (line := " ".join(c.cmdline())) and ident.run_id in line
        ]
    except psutil.Error:
        workers = []
    if not workers:  # still in rendezvous: the agent forwards the signal to what it starts
        return send_signal(ident, sig)
    for w in workers:
        try:
            w.send_signal(sig)
        except psutil.Error:
            continue
    return True


def kill_tree(ident: ProcessIdentity) -> bool:
    """SIGKILL the run's own process and every process under it (torchrun's ranks run in
    sessions of their own, so a process-group kill would miss them; data workers too)."""
    proc = _process(ident)
    if proc is None:
        return False
    try:
        below = proc.children(recursive=True)
    except psutil.Error:
        below = []
    try:
        proc.kill()
    except psutil.Error:
        return False
    for p in below:
        try:
            p.kill()
        except psutil.Error:
            continue
    return True


def spawn_detached(cmd: Sequence[str], out: BinaryIO) -> subprocess.Popen[bytes]:
    """Start a helper process of tuneterm's own (a scheduler, a watcher) in its own session,
    so it outlives the terminal and the SSH session, with its output appended to `out`; a
    thread reaps it if it exits while this process lives."""
    popen = subprocess.Popen(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    threading.Thread(target=popen.wait, name=f"reap-{popen.pid}", daemon=True).start()
    return popen
