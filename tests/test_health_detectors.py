"""Each health detector on a synthetic event stream: it fires when it should, and stays quiet
on a healthy run. No engine: the streams are lists of events as the engine writes them."""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import pytest
from helpers.cli import TINY

from tuneterm.config import HealthSection, loads
from tuneterm.health import RunHealth
from tuneterm.health.detectors import DETECTORS, KINDS, check
from tuneterm.slurm.states import JobState

Disk = namedtuple("Disk", "total used free")
BIG_DISK = Disk(1000 * 2**30, 100 * 2**30, 900 * 2**30)
T0 = 1_800_000_000.0


def train(
    step: int, loss: float = 1.0, examples_s: float = 100.0, wait: float = 0.05
) -> dict[str, Any]:
    return {
        "kind": "train",
        "t": T0 + step,
        "step": step,
        "loss": loss,
        "examples_s": examples_s,
        "data_wait": wait,
    }


def healthy(n: int = 40) -> list[dict[str, Any]]:
    """A run whose loss falls smoothly, at a steady speed, one event a second."""
    return [train(i, loss=2.0 * math.exp(-i / 30)) for i in range(n)]


def kinds(
    h: RunHealth, now: float, running: bool = True, alive: bool = True, disk: Any = BIG_DISK
) -> list[str]:
    return sorted(a.kind for a in check(h, now, running, alive, disk))


def fed(events: list[dict[str, Any]], **settings: Any) -> RunHealth:
    h = RunHealth(HealthSection(**settings))
    h.feed(events)
    return h


def test_a_healthy_run_raises_nothing() -> None:
    h = fed(healthy())
    assert kinds(h, T0 + 41) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_inf_loss_is_an_error_with_a_hint(bad: float) -> None:
    h = fed([*healthy(10), train(10, loss=bad), *healthy(3)])
    alerts = check(h, T0 + 20, True, True, BIG_DISK)
    (nan,) = [a for a in alerts if a.kind == "nan_loss"]
    assert nan.severity == "error" and nan.t == T0 + 10 and "step 10" in nan.message
    assert "grad_clip" in nan.hint


def test_loss_spike_fires_above_the_factor_and_not_below() -> None:
    base = [train(i, loss=1.0) for i in range(10)]
    assert kinds(fed([*base, train(10, loss=4.9)], spike_factor=5.0), T0 + 11) == []
    h = fed([*base, train(10, loss=6.0)], spike_factor=5.0)
    assert kinds(h, T0 + 11) == ["loss_spike"]
    (a,) = check(h, T0 + 11, True, True, BIG_DISK)
    assert "6.0x" in a.message and "spike_factor = 5" in a.message


def test_no_spike_during_warmup() -> None:
    assert kinds(fed([train(0, 1.0), train(1, 50.0)], spike_factor=5.0), T0 + 2) == []


def test_stalled_when_silent_while_alive_and_only_then() -> None:
    h = fed(healthy(20), stall_factor=10, stall_seconds=30)
    assert kinds(h, T0 + 19 + 29) == []  # usual gap 1 s: 30 s allowed
    assert kinds(h, T0 + 19 + 31) == ["stalled"]
    assert kinds(h, T0 + 19 + 31, alive=False) == []  # a dead process is "crashed", not stalled
    assert kinds(h, T0 + 19 + 31, running=False) == []


def test_a_run_still_starting_gets_minutes_before_it_is_stalled() -> None:
    start = [{"kind": "status", "t": T0, "status": "starting"}, {"kind": "log", "t": T0 + 1}]
    h = fed(start, stall_seconds=3)
    assert kinds(h, T0 + 120) == []
    assert kinds(h, T0 + 400) == ["stalled"]


def test_sys_samples_do_not_hide_a_stall() -> None:
    sys_ticks = [{"kind": "sys", "t": T0 + 20 + i, "cpu": 5.0} for i in range(60)]
    h = fed([*healthy(20), *sys_ticks], stall_seconds=30)
    assert kinds(h, T0 + 80) == ["stalled"]


def gpu(t: float, util: float) -> dict[str, Any]:
    return {"kind": "sys", "t": t, "gpus": [{"index": 0, "util": util}]}


def test_gpu_idle_after_minutes_near_zero_utilisation() -> None:
    busy = [gpu(T0 + i, 90.0) for i in range(10)]
    idle = [gpu(T0 + 10 + i, 1.0) for i in range(0, 300, 2)]
    h = fed([*busy, *idle, train(305)], gpu_idle_minutes=3, stall_seconds=1e9)
    assert kinds(h, T0 + 150) == []
    assert kinds(h, T0 + 200) == ["gpu_idle"]
    assert kinds(h, T0 + 200, running=False) == []


def test_no_gpu_alert_without_gpu_samples() -> None:
    cpu_only = [{"kind": "sys", "t": T0 + i, "cpu": 100.0} for i in range(400)]
    assert "gpu_idle" not in kinds(fed(cpu_only, stall_seconds=1e9), T0 + 400)


def test_input_bound_after_three_intervals_in_a_row() -> None:
    two = [train(i, wait=0.5) for i in range(2)]
    assert kinds(fed([*healthy(5), *two]), T0 + 8) == []
    three = [train(5 + i, wait=0.5) for i in range(3)]
    assert kinds(fed([*healthy(5), *three]), T0 + 9) == ["input_bound"]
    recovered = [*healthy(5), *three, train(9, wait=0.01)]
    assert kinds(fed(recovered), T0 + 10) == []


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"kind": "error", "message": "out of memory with train.batch_size = 64: try 32"}, "oom"),
        (
            {
                "kind": "log",
                "level": "error",
                "msg": "DataLoader worker (pid 7) is killed by signal: Killed. OutOfMemoryError",
            },
            "oom",
        ),
        (
            {
                "kind": "error",
                "message": "boom",
                "traceback": "Traceback (most recent call last):\n  File x\nValueError: boom",
            },
            "traceback",
        ),
    ],
)
def test_oom_and_tracebacks_in_the_log(event: dict[str, Any], kind: str) -> None:
    h = fed([*healthy(5), {"t": T0 + 6, **event}])
    assert kinds(h, T0 + 7) == [kind]


def test_info_logs_raise_nothing() -> None:
    h = fed([*healthy(5), {"kind": "log", "t": T0 + 6, "level": "info", "msg": "memory ok"}])
    assert kinds(h, T0 + 7) == []


def test_disk_nearly_full() -> None:
    h = fed(healthy(5))
    full = Disk(100 * 2**30, 99 * 2**30, 1 * 2**30)
    assert kinds(h, T0 + 6, disk=full) == ["disk_full"]
    assert kinds(h, T0 + 6, disk=BIG_DISK) == []


def test_a_2x_slowdown_against_the_runs_own_speed() -> None:
    fast = [train(i, examples_s=800.0) for i in range(10)]
    slow = [train(10 + i, examples_s=350.0) for i in range(10)]
    assert kinds(fed([*fast, *slow]), T0 + 21) == ["slowdown"]
    a_bit = [train(10 + i, examples_s=600.0) for i in range(10)]
    assert kinds(fed([*fast, *a_bit]), T0 + 21) == []


def test_each_detector_raises_only_and_all_the_alerts_it_declares() -> None:
    """Every alert kind happens in one of these runs; each comes from a detector that
    declares it, and `KINDS` (read from the registry) is exactly what the runs raised."""
    spike = [*healthy(10), train(10, loss=50.0)]
    busy_then_idle = [gpu(T0 + i, 90.0) for i in range(5)] + [gpu(T0 + 400, 1.0)]
    slow = [train(i, examples_s=800.0) for i in range(10)]
    slow += [train(10 + i, examples_s=100.0, wait=0.5) for i in range(10)]
    runs = [
        (fed([*healthy(5), train(5, loss=math.nan)]), T0 + 6, BIG_DISK),
        (fed(spike), T0 + 11, BIG_DISK),
        (fed(healthy(20), stall_seconds=5), T0 + 500, BIG_DISK),
        (fed([*busy_then_idle, train(0)], stall_seconds=1e9), T0 + 600, BIG_DISK),
        (fed(slow, stall_seconds=1e9), T0 + 21, Disk(100 * 2**30, 99 * 2**30, 2**30)),
        (fed([*healthy(3), {"kind": "error", "t": T0 + 4, "message": "out of memory"}]),
         T0 + 5, BIG_DISK),
        (fed([*healthy(3), {"kind": "log", "t": T0 + 4, "level": "error", "msg": "boom"}]),
         T0 + 5, BIG_DISK),
    ]  # fmt: skip
    for job in (JobState("7", "PENDING", "Priority"), JobState("8", "OUT_OF_MEMORY"),
                JobState("9", "NODE_FAIL")):  # fmt: skip
        h = fed(healthy(3))
        h.job, h.job_since = job, T0 - 2 * 3600  # pending for two hours (the limit is one)
        runs.append((h, T0 + 4, BIG_DISK))
    raised: set[str] = set()
    for name, detector in DETECTORS.items():
        for h, now, disk in runs:
            for alert in detector.check(h, now, True, True, disk):
                assert alert.kind in detector.raises, (name, alert.kind)
                raised.add(alert.kind)
    assert raised == set(KINDS)
    assert len(KINDS) == len(set(KINDS)) == 12


def test_the_thresholds_are_the_runs_health_section_as_users_write_it() -> None:
    """The keys the README documents, in a run's TOML, are what the detectors read."""
    cfg = loads(TINY + "\n[health]\nstall_seconds = 2\nstall_factor = 2\ngpu_idle_minutes = 0.5\n")
    events = [gpu(T0 + i, 90.0) for i in range(5)] + [train(5), gpu(T0 + 6, 1.0)]
    h = RunHealth(cfg.health)
    h.feed(events)
    assert kinds(h, T0 + 20) == ["stalled"]  # 2 s, not the default minute
    assert kinds(h, T0 + 40) == ["gpu_idle", "stalled"]  # half a minute, not three
    default = fed(events)
    assert kinds(default, T0 + 40) == []
