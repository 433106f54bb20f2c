"""A live feed of one host's run list, for a view that stays open (the TUI, the bench).

The far side is `tuneterm ls --json --watch SECONDS`: one line per change, and at least
every KEEPALIVE_S, through the host's one master connection; it exits when its ssh session
goes. Here a thread reads the lines. A link that drops, or a host silent for longer than its
timeout, reads `unreachable since HH:MM`; the feed then tries again until stopped.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from tuneterm.hosts.transport import HostError, Transport

Rows = list[dict[str, Any]]


class HostFeed:
    def __init__(
        self,
        t: Transport,
        on_rows: Callable[[str, Rows], None],
        on_down: Callable[[str, str], None],
        every: float = 0.5,
    ) -> None:
        self.t = t
        self.on_rows = on_rows
        self.on_down = on_down
        self.every = every
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._heard = time.monotonic()
        self._silent = False

    @property
    def name(self) -> str:
        return self.t.spec.name

    def run(self) -> None:
        """The feed's loop, for a thread of its own; returns after `stop()`."""
        while not self._stop.is_set():
            try:
                self._stream()
            except HostError as exc:
                self.on_down(self.name, str(exc).removeprefix(f"host {self.name}: "))
            except OSError as exc:
                self.on_down(self.name, f"unreachable: {exc}")
            self._stop.wait(1.0)

    def _stream(self) -> None:
        args = ["ls", "--json", "--watch", f"{self.every:g}"]
        proc = self.t.popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._proc = proc
        self._heard = time.monotonic()
        self._silent = False
        watchdog = threading.Thread(target=self._watch, args=(proc,), daemon=True)
        watchdog.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                rows = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._heard = time.monotonic()
            if isinstance(rows, list):
                self.on_rows(self.name, rows)
        code = proc.wait()
        if self._stop.is_set():
            return
        # A dropped link is tried again at once, and reads unreachable only if that fails
        # (popen raises); a host that went silent reads unreachable now.
        if not self._silent:
            self.t.forget_master(f"the link dropped (ssh exit {code})")
        else:
            self.on_down(self.name, self.t.unreachable_text())

    def _watch(self, proc: subprocess.Popen[str]) -> None:
        """End a stream that went silent for longer than the host's timeout."""
        limit = self.t.spec.timeout_s + 5.0  # the far side speaks every KEEPALIVE_S at least
        while proc.poll() is None and not self._stop.is_set():
            if time.monotonic() - self._heard > limit:
                self._silent = True
                self.t.forget_master(f"no word for {limit:g} s")
                proc.kill()
                return
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
