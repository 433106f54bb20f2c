"""The script's process tree, held by the operating system's own means (Linux `prctl`).

- The supervisor is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process the script leaves
  behind (a `sleep 1000` started with `start_new_session=True`, a daemon, a DataLoader worker
  whose parent died) re-parents to the supervisor, not to init, so it stays in sight and is
  ended with the run.
- The script itself gets `PR_SET_PDEATHSIG`: SIGKILL when the supervisor dies (kill -9), so a
  quiet script never trains on unseen. What it started and outlives it reads `orphaned`.

Elsewhere than Linux both are skipped: the run works, without these guarantees.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import psutil

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


def become_subreaper() -> bool:
    """Adopt every orphaned descendant from now on; False where the system cannot."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGKILL when this process dies, or None.

    Everything is looked up before the fork, so the child only makes two system calls between
    fork and exec (nothing that takes a lock another thread may hold). It runs after the
    child's `setsid` (`start_new_session`), and a parent that died before the `prctl` is
    caught by the parent-pid check."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    pdeathsig, kill = ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL)
    zero = ctypes.c_ulong(0)

    def preexec() -> None:
        prctl(pdeathsig, kill, zero, zero, zero)
        if os.getppid() != parent:
            os._exit(137)

    return preexec


def descendants() -> list[psutil.Process]:
    """Every live process under this one (adopted ones included), zombies left out."""
    try:
        below = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for p in below:
        with contextlib.suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def reap(script: int = 0) -> None:
    """Collect adopted children that ended, never the script itself (pid `script`): Popen waits
    for it, and a pid reaped here could be reused before Popen learns its exit code."""
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process(os.getpid()).children():
            with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
                if p.pid != script and p.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(p.pid, os.WNOHANG)


def describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} ({' '.join(proc.cmdline())[:80] or proc.name()})"
    except psutil.Error:
        return str(proc.pid)


@dataclass
class Ended:
    """What ending a set of processes took: those that ended on SIGTERM, those that needed
    SIGKILL, and those still there after both."""

    termed: list[str]
    killed: list[str]
    alive: list[str]


def end_all(procs: list[psutil.Process], grace: float) -> Ended:
    """SIGTERM, up to `grace` seconds to end, then SIGKILL; every process adopted or ours."""
    names = {p.pid: describe(p) for p in procs}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace, callback=lambda p: reap())
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    _, still = psutil.wait_procs(alive, timeout=2.0, callback=lambda p: reap())
    reap()
    gone = {p.pid for p in alive}
    return Ended(
        [names[p.pid] for p in procs if p.pid not in gone],
        [names[p.pid] for p in alive if p not in still],
        [names[p.pid] for p in still],
    )


def kill_now(procs: list[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()


def identities(procs: list[psutil.Process]) -> list[tuple[int, float]]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            out.append((p.pid, round(p.create_time(), 3)))
    return out
