"""The link to one host: the system's own OpenSSH client, one multiplexed connection per host.

* `~/.ssh/config`, the agent, ProxyJump and known_hosts work as the user set them; host-key
  checking is never turned off (settings refuse the options that would).
* One master connection per host (ControlMaster, ControlPersist), its socket in a private
  0700 folder; every call is a client of that master, so a call costs no new handshake.
* What runs there is an argv: each word quoted with `shlex.quote` for the remote login shell
  (sshd always runs the command through it); nothing passes through a local shell.
* A call that cannot reach the host raises `HostUnreachable` ("unreachable since HH:MM"),
  after at most the host's `timeout_s`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from tuneterm.hosts.settings import HostSpec

ENV_CONTROL_DIR = "TUNETERM_SSH_DIR"
PERSIST_S = 60  # an idle master connection lives this long after the last call
SSH_FAILED = 255  # ssh's own exit status when it could not connect (the remote never uses it)
INSTALL = "pip install tuneterm"


class HostError(Exception):
    """A host that did not do what was asked; the message names the host."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(f"host {host}: {message}")


class HostUnreachable(HostError):
    pass


class HostToolMissing(HostError):
    """tuneterm is missing there, or too old for the JSON this side must read (exit 2)."""


@dataclass(frozen=True)
class Reply:
    code: int
    stdout: str
    stderr: str


def control_dir() -> Path:
    """The private folder of the master sockets: $TUNETERM_SSH_DIR, else in
    $XDG_RUNTIME_DIR, else /tmp/tuneterm-ssh-UID. Refused unless it is ours and 0700."""
    env = os.environ.get(ENV_CONTROL_DIR)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if env:
        path = Path(env)
    elif runtime:
        path = Path(runtime) / "tuneterm-ssh"
    else:
        path = Path(tempfile.gettempdir()) / f"tuneterm-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise HostError("-", f"{path} must be a folder of yours with mode 0700 (chmod 700 {path})")
    return path


def remote_words(spec: HostSpec, args: Sequence[str]) -> list[str]:
    """The argv of a tuneterm call on `spec` (the runs folder first when the host has one)."""
    runs = ["--runs-dir", spec.runs] if spec.runs else []
    if spec.local:
        return [sys.executable, "-m", "tuneterm", *runs, *args]
    return [*spec.tuneterm, *runs, *args]


def shell_line(words: Sequence[str], workdir: str = "") -> str:
    """One line for the remote login shell: every word quoted, so a run name such as
    `a;rm -rf ~` reaches tuneterm as one argument and is never run. A workdir starting
    with `~/` is left to the remote shell to expand."""
    line = " ".join(shlex.quote(w) for w in words)
    if not workdir:
        return line
    if workdir == "~" or workdir.startswith("~/"):
        place = "~/" + shlex.quote(workdir[2:]) if workdir[2:] else "~"
    else:
        place = shlex.quote(workdir)
    # exec: tuneterm is the session's own process, so it sees the session end (its parent
    # changes) and a follower there never outlives the link
    return f"cd {place} && exec {line}"


class Transport:
    """Calls on one host. Thread-safe; the master connection is started once, on demand,
    and again after it died."""

    def __init__(self, spec: HostSpec, persist_s: int = PERSIST_S) -> None:
        self.spec = spec
        self.persist_s = persist_s
        self.down_since: float | None = None
        self.reason = ""
        self._lock = threading.Lock()
        self._master_ok = False
        self._dir = control_dir() if not spec.local else None

    # -- the ssh command line ---------------------------------------------------------
    def _socket(self) -> str:
        assert self._dir is not None
        # one socket per host entry and settings: %C would share it between entries that
        # reach one machine with different options
        key = "\0".join((self.spec.ssh, *self.spec.ssh_options)).encode()
        return str(self._dir / hashlib.sha256(key).hexdigest()[:20])

    def _ssh(self, *extra: str) -> list[str]:
        t = max(1, int(self.spec.timeout_s))
        alive = max(1, t // 3)
        return [
            "ssh",
            "-o", f"ControlPath={self._socket()}",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={t}",
            "-o", f"ServerAliveInterval={alive}",
            "-o", "ServerAliveCountMax=3",
            *self.spec.ssh_options,
            *extra,
        ]  # fmt: skip

    def argv(self, args: Sequence[str]) -> list[str]:
        """The local argv that runs `tuneterm ARGS` on the host (no local shell)."""
        words = remote_words(self.spec, args)
        if self.spec.local:
            return words
        line = shell_line(words, self.spec.workdir)
        return [*self._ssh("-o", "ControlMaster=no", "-T"), self.spec.ssh, line]

    # -- the master connection --------------------------------------------------------
    def master_alive(self) -> bool:
        if self.spec.local:
            return True
        check = subprocess.run(
            [*self._ssh("-O", "check"), self.spec.ssh],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=self.spec.timeout_s,
        )
        return check.returncode == 0

    def ensure_master(self) -> None:
        """Start the master connection unless one runs (one per host, across processes:
        a lock file in the socket folder makes two starting at once wait for each other)."""
        if self.spec.local:
            return
        with self._lock:
            if self._master_ok:
                return
            with open(self._socket() + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not self.master_alive():
                    self._start_master()
            self._master_ok = True
            self.down_since, self.reason = None, ""

    def _start_master(self) -> None:
        # A socket left by a master that died (killed, or its link dropped) would make the
        # new ssh say "ControlSocket already exists, disabling multiplexing" and stay on as a
        # plain connection for good; the check above found no master behind it.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._socket())
        argv = [
            *self._ssh("-o", "ControlMaster=yes", "-o", f"ControlPersist={self.persist_s}"),
            "-N",
            "-f",
            self.spec.ssh,
        ]
        # The master keeps whatever stderr it got: a file, never a pipe we would wait on.
        with tempfile.TemporaryFile("w+") as err:
            try:
                code = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    timeout=self.spec.timeout_s + 5,
                ).returncode
            except subprocess.TimeoutExpired:
                self._down(f"no answer within {self.spec.timeout_s:g} s")
            err.seek(0)
            text = err.read()
        if code != 0:
            self._down(_last_line(text) or f"ssh exited {code}")

    def forget_master(self, reason: str) -> None:
        """The link dropped: the next call checks the master again, and the host reads
        unreachable from now if it does not come back."""
        with self._lock:
            self._master_ok = False
            if self.down_since is None:
                self.down_since = time.time()
            self.reason = reason

    def _down(self, reason: str) -> NoReturn:
        self._master_ok = False
        if self.down_since is None:
            self.down_since = time.time()
        self.reason = reason
        raise HostUnreachable(self.spec.name, self.unreachable_text())

    def unreachable_text(self) -> str:
        since = time.strftime("%H:%M", time.localtime(self.down_since or time.time()))
        return (
            f"unreachable since {since} ({self.reason})"
            if self.reason
            else (f"unreachable since {since}")
        )

    def close(self) -> None:
        """End the master connection now (else it ends PERSIST_S after the last call)."""
        if self.spec.local or self._dir is None:
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [*self._ssh("-O", "exit"), self.spec.ssh],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.spec.timeout_s,
            )
        self._master_ok = False

    # -- calls ------------------------------------------------------------------------
    def call(self, args: Sequence[str], timeout: float | None = None) -> Reply:
        """Run `tuneterm ARGS` there and wait. Raises HostUnreachable or HostToolMissing;
        any other exit status is the caller's to read."""
        self.ensure_master()
        try:
            proc = subprocess.run(
                self.argv(args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout or self.spec.timeout_s,
            )
        except subprocess.TimeoutExpired:
            self._down(f"no answer within {timeout or self.spec.timeout_s:g} s")
        reply = Reply(proc.returncode, proc.stdout, proc.stderr)
        self.check(reply)
        return reply

    def popen(self, args: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        """Start `tuneterm ARGS` there, its stdout a text pipe (a follower)."""
        self.ensure_master()
        return subprocess.Popen(  # type: ignore[call-overload]
            self.argv(args), stdin=subprocess.DEVNULL, text=True, **kw
        )

    def check(self, reply: Reply) -> None:
        """Raise what a failed reply means for the link or the remote tuneterm."""
        if reply.code == SSH_FAILED and not self.spec.local:
            self._down(_last_line(reply.stderr) or "ssh failed")
        missing = reply.code in (126, 127) or "No module named tuneterm" in reply.stderr
        if missing:
            where = f"hosts.{self.spec.name}.tuneterm"
            raise HostToolMissing(
                self.spec.name,
                f"tuneterm is not installed there ({' '.join(self.spec.tuneterm)}: "
                f"{_last_line(reply.stderr)}); install it there with `{INSTALL}`, or set "
                f"{where} to its path",
            )
        # The arguments passed this side's parser, so a parser there that refuses them is older
        old = "argument COMMAND: invalid choice" in reply.stderr
        if reply.code == 2 and (old or "unrecognized arguments" in reply.stderr):
            raise HostToolMissing(
                self.spec.name,
                f"its tuneterm is too old for this ({_last_line(reply.stderr)}); upgrade it "
                f"there with `{INSTALL} --upgrade`",
            )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
