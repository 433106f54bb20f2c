"""Waiting for a condition, never for a length of time: `wait_for` polls from a plain test,
`until` from a Pilot test (letting the app's workers run between looks).

Every deadline is `PATIENCE` unless a test has a reason for another: a deadline only ends a
test that is already broken, so it costs nothing on a quick machine, and it must survive a
machine several times slower than usual (a loaded CI box, other suites running beside).
A test that means "this must happen soon" says so by asserting an order, or by injecting a
clock, not by a short deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

PATIENCE = 120.0  # seconds


def wait_for(pred: Callable[[], Any], timeout: float = PATIENCE, every: float = 0.1) -> Any:
    """Poll `pred` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


async def until(pilot: Any, cond: Any, timeout: float = PATIENCE, what: str = "") -> None:
    """Wait for a condition the app reaches through its workers (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.05)


# Worker groups that run for the app's whole life (the event poller loops until cancelled).
LIFELONG = ("events",)


async def settled(pilot: Any) -> None:
    """Until the workers running now have finished (done, failed or superseded) and the
    messages they posted are handled: what a fixed pause hoped for, on a machine of any speed.
    (Textual's `workers.wait_for_complete` raises on a superseded exclusive worker, and would
    wait for the lifelong poller.)"""
    running = [w for w in pilot.app.workers if w.group not in LIFELONG]
    await until(
        pilot,
        lambda: all(w.is_finished for w in running),
        what=f"the app's workers: {[w for w in running if not w.is_finished]}",
    )
    await pilot.pause()
