"""Process identity: a run's process is known by pid, start time and command line together.

A pid alone is not enough: after the engine dies the kernel may hand the pid to any other
process. We never count such a process as the run's, and never signal it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
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


# -- a script run's process group ----------------------------------------------------------
ENV_RUN_DIR = "TUNETERM_RUN_DIR"  # tuneterm.api's: every process of a script run carries it


@dataclass(frozen=True)
class ProcessGroup:
    """A script run's own processes: the group its script leads (pgid = the script's pid, as
    it starts a session of its own) from the group's start time, and processes recorded by
    pid + start time (they may have left the group: `start_new_session=True`)."""

    pgid: int
    start_time: float
    run_dir: str  # its processes carry TUNETERM_RUN_DIR = this in their environment
    procs: tuple[tuple[int, float], ...] = ()


def _verified(pid: int, start: float) -> psutil.Process | None:
    """The live process with this pid and start time, or None (gone, a zombie, or a reuse)."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - start) > _START_TOLERANCE:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return proc


def _carries_run(proc: psutil.Process, run_dir: str) -> bool:
    try:
        return proc.environ().get(ENV_RUN_DIR) == run_dir
    except psutil.Error:
        return False


def group_members(group: ProcessGroup, scan: bool = True) -> list[psutil.Process]:
    """The group's live processes, each verified: a recorded one by pid + start time; with
    `scan`, any other process in the group too, if it started after the group did and carries
    the run's folder in its environment (a pgid alone may since belong to someone else)."""
    found: dict[int, psutil.Process] = {}
    for pid, start in ((group.pgid, group.start_time), *group.procs):
        proc = _verified(pid, start)
        if proc is not None:
            found[pid] = proc
    if scan and group.pgid > 0:
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid == os.getpid():
                continue
            try:
                if os.getpgid(proc.pid) != group.pgid:
                    continue
                if proc.create_time() < group.start_time - _START_TOLERANCE:
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
            except (OSError, psutil.Error):
                continue
            if _carries_run(proc, group.run_dir):
                found[proc.pid] = proc
    return list(found.values())


def signal_group(group: ProcessGroup, sig: signal.Signals, scan: bool = True) -> int:
    """Send `sig` to each verified process of the group (never a bare killpg: a process is
    checked before it is signalled); returns how many got it."""
    sent = 0
    for proc in group_members(group, scan):
        try:
            proc.send_signal(sig)
            sent += 1
        except psutil.Error:
            continue
    return sent


def wait_group_gone(group: ProcessGroup, timeout: float, every: float = 0.1) -> bool:
    """Whether every process of the group is gone within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while group_members(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True
