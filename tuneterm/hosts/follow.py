"""Following a remote run's events across a dropped link.

The far side is `tuneterm events RUN --json --follow --after SEQ`: one JSON line per event,
each with its `seq`. When the link drops (ssh exits 255), the follower reconnects and asks
again from the last `seq` it saw, so nothing is lost and nothing comes twice. A host that
does not come back within its `timeout_s` raises HostUnreachable.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from tuneterm.hosts.transport import SSH_FAILED, HostUnreachable, Reply, Transport

RETRY_EVERY = 0.5  # seconds between reconnection attempts


def follow_events(
    t: Transport,
    run: str,
    emit: Callable[[dict[str, Any]], None],
    after: int = -1,
    follow: bool = True,
    kinds: Sequence[str] = (),
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> tuple[int, str]:
    """Emit the run's events after `after` until it ends (or, without `follow`, until the
    ones there now are out). Returns the far side's exit status and its stderr. `on_start`
    gets each ssh process it starts (a view that stops following kills it)."""
    last = after
    while True:
        args = ["events", run, "--json", "--after", str(last)]
        args += ["--follow"] if follow else []
        for kind in kinds:
            args += ["--kind", kind]
        proc = t.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        if on_start is not None:
            on_start(proc)
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the drop: it comes again
                continue
            seq = event.get("seq", -1) if isinstance(event, dict) else -1
            if not isinstance(seq, int) or seq <= last:
                continue
            last = seq
            emit(event)
        code = proc.wait()
        err = proc.stderr.read()
        if code < 0:  # killed here: the view stopped following
            return code, ""
        if code != SSH_FAILED or t.spec.local:
            t.check(Reply(code, "", err))
            return code, err
        reconnect(t, err)


def reconnect(t: Transport, why: str) -> None:
    """Wait for the host to answer again, for at most its timeout."""
    t.forget_master(why.strip().splitlines()[-1] if why.strip() else "the link dropped")
    deadline = time.monotonic() + t.spec.timeout_s
    while True:
        try:
            t.ensure_master()
            return
        except HostUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(RETRY_EVERY)
