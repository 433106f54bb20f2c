"""The detectors: each reads a `RunHealth` and returns the alerts it raises.

The registry `DETECTORS` is the one list of them, and each declares the alert kinds it may
raise: `KINDS`, every alert kind, is read from it. `tuneterm health`, the TUI and the watcher
go through `check`. A detector never reads files: `RunHealth.feed` has already kept what it
needs. The thresholds are the run's `[health]` section (config.HealthSection), by its names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneterm.health.alerts import Alert
from tuneterm.slurm.states import ALERTS, ended_status

if TYPE_CHECKING:
    from tuneterm.health.state import RunHealth

STARTUP_S = 300.0  # silence allowed before a run's first train event
GIB = 2**30
# (health, now, said to be running, its process alive, the runs folder's disk usage)
Check = Callable[["RunHealth", float, bool, bool, Any], list[Alert]]


@dataclass(frozen=True)
class Detector:
    raises: tuple[str, ...]  # the alert kinds it may return
    check: Check


def _nan(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    return [h.nan] if h.nan else []


def _spike(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    return [h.spike] if h.spike else []


def _input_bound(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    return [h.input_bound] if h.input_bound and running else []


def _crashes(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    return list(h.crashes)


def _stalled(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    gap = h.usual_gap()
    if not (running and alive) or h.last_t is None:
        return []
    s = h.settings
    allowed = max(s.stall_seconds, s.stall_factor * (gap or s.stall_seconds))
    if not h.train_points:  # still starting: imports, data, model, the first compiled steps
        allowed = max(allowed, STARTUP_S)
    silent = now - h.last_t
    if silent < allowed:
        return []
    usual = f"usually every {gap:.1f} s" if gap else "no usual interval yet"
    return [
        Alert(
            "stalled",
            "error",
            h.last_t + allowed,
            f"no event for {silent:.0f} s while the process is alive ({usual})",
            "a hung data loader, a deadlock or a stopped process (SIGSTOP, a debugger): "
            "look at it with py-spy dump, or stop and resume the run",
        )
    ]


def _gpu_idle(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    s = h.settings
    if not (running and alive and h.gpu_seen) or h.gpu_busy_t is None:
        return []
    idle, allowed = now - h.gpu_busy_t, s.gpu_idle_minutes * 60
    if idle < allowed:
        return []
    return [
        Alert(
            "gpu_idle",
            "warning",
            h.gpu_busy_t + allowed,
            f"the run's GPUs have been under {s.gpu_idle_util:g}% busy for {idle / 60:.1f} min",
            "the run waits on something else: data loading (data.workers), the disk, a hung "
            "collective; or it trains on the CPU (train.device)",
        )
    ]


def _slowdown(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    recent = h.recent_speed()
    if not running or recent is None or not h.early_speed:
        return []
    early = sorted(h.early_speed)[len(h.early_speed) // 2]
    factor = h.settings.slowdown_factor
    if recent * factor > early:
        return []
    return [
        Alert(
            "slowdown",
            "warning",
            h.last_t or now,
            f"{recent:.1f} examples/s now against {early:.1f} earlier in this run "
            f"({early / recent:.1f}x slower)",
            "another process shares the GPU or the CPU (nvidia-smi, top), or the data moved "
            "to a slower disk",
        )
    ]


def _disk(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    if disk is None or not running:
        return []
    s = h.settings
    return disk_alerts(disk, s.disk_free_fraction, int(s.disk_reserve_gb * GIB), now)


def disk_alerts(disk: Any, fraction: float, min_bytes: int, now: float) -> list[Alert]:
    need = max(fraction * disk.total, min_bytes)
    if disk.free >= need:
        return []
    return [
        Alert(
            "disk_full",
            "error" if disk.free < need / 4 else "warning",
            math.floor(now / 3600) * 3600,  # one alert an hour, not one a pass
            f"the runs folder's disk has {disk.free / 2**30:.1f} GiB free of "
            f"{disk.total / 2**30:.0f} GiB",
            "free space (tuneterm rm old runs, their checkpoints are the bulk); the engine "
            "stops writing checkpoints before the disk fills",
        )
    ]


def _slurm(h: RunHealth, now: float, running: bool, alive: bool, disk: Any) -> list[Alert]:
    job = h.job
    if job is None:
        return []
    if job.state in ALERTS:
        status, why, hint = ended_status(job.state)
        kind = "out_of_memory" if job.state == "OUT_OF_MEMORY" else "node_fail"
        return [Alert(kind, "error", now, f"job {job.job_id}: {why} (run {status})", hint)]
    waited = now - h.job_since
    if job.waiting and h.job_since and waited > h.settings.pending_minutes * 60:
        return [
            Alert(
                "pending_long",
                "warning",
                now,
                f"job {job.job_id} has waited {waited / 60:.0f} min: {job.reason or job.state}",
                "Priority/Resources: a smaller slurm.time, nodes or gpus_per_node starts "
                "sooner (or another slurm.partition); JobHeldUser: scontrol release the job",
            )
        ]
    return []


DETECTORS: dict[str, Detector] = {
    "nan_loss": Detector(("nan_loss",), _nan),
    "loss_spike": Detector(("loss_spike",), _spike),
    "stalled": Detector(("stalled",), _stalled),
    "gpu_idle": Detector(("gpu_idle",), _gpu_idle),
    "input_bound": Detector(("input_bound",), _input_bound),
    "log": Detector(("oom", "traceback"), _crashes),  # out-of-memory and tracebacks
    "disk_full": Detector(("disk_full",), _disk),
    "slowdown": Detector(("slowdown",), _slowdown),
    "slurm": Detector(("pending_long", "out_of_memory", "node_fail"), _slurm),
}

# Every alert kind, for help texts and filters.
KINDS = tuple(kind for d in DETECTORS.values() for kind in d.raises)


def check(h: RunHealth, now: float, running: bool, alive: bool, disk: Any = None) -> list[Alert]:
    """The open alerts of a run, given the time, whether it is (said to be) running, whether
    its process is alive, and the runs folder's disk usage (`shutil.disk_usage`)."""
    out: list[Alert] = []
    for detector in DETECTORS.values():
        out.extend(detector.check(h, now, running, alive, disk))
    return out
