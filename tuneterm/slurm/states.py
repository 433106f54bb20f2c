"""Slurm's job states, and what each means for a run.

Every state `squeue --states=all` prints is mapped: those of a job still in the queue (the run
is `pending`, or its process speaks for itself), and those of a job that has ended, which say
what became of a run whose process could not write its own end (cancelled while pending,
killed at its time limit, out of memory, its node lost, preempted)."""

from __future__ import annotations

from dataclasses import dataclass

# A job waiting to run, or to run again: the run reads `pending`, with Slurm's reason.
WAITING = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED")
# A job whose batch script runs (or is being set up or torn down).
RUNNING = ("RUNNING", "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED")

# An ended job -> (the run's status, why, a hint for the user or "").
ENDED: dict[str, tuple[str, str, str]] = {
    "COMPLETED": ("crashed", "its job ended without the run's final status", ""),
    "FAILED": ("failed", "its job failed", "see slurm-JOBID.out in the run folder"),
    "CANCELLED": ("cancelled", "its job was cancelled", ""),
    "TIMEOUT": (
        "stopped",
        "TIMEOUT: its job reached its time limit",
        "raise slurm.time, or slurm.grace_s so it checkpoints before the limit",
    ),
    "DEADLINE": ("stopped", "DEADLINE: its job reached its deadline", ""),
    "OUT_OF_MEMORY": (
        "failed",
        "OUT_OF_MEMORY: its job ran out of memory",
        "raise slurm.mem, or lower data.batch_size or data.workers",
    ),
    "NODE_FAIL": (
        "crashed",
        "NODE_FAIL: its job's node failed",
        "resume it; Slurm takes the node out of service",
    ),
    "BOOT_FAIL": ("crashed", "BOOT_FAIL: its job's node did not boot", "resume it"),
    "PREEMPTED": (
        "stopped",
        "PREEMPTED: a job of higher priority took its resources",
        "set slurm.requeue = true to have it requeued and resumed by itself",
    ),
    "SPECIAL_EXIT": ("failed", "SPECIAL_EXIT: its job was held after a failure", ""),
}
ALL_STATES = (*WAITING, *RUNNING, *ENDED)
# States whose jobs the health watcher raises an alert for, with the hint above.
ALERTS = ("OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL")


@dataclass(frozen=True)
class JobState:
    """One job as Slurm reports it: `job_id` as scancel takes it (`123`, or `123_4` for an
    element of a job array)."""

    job_id: str
    state: str
    reason: str = ""
    partition: str = ""
    nodes: str = ""

    @property
    def waiting(self) -> bool:
        return self.state in WAITING

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def ended(self) -> bool:
        return not (self.waiting or self.running)


@dataclass(frozen=True)
class SlurmRecord:
    """What a run records of its job (meta.json `slurm`), read from a plain dict."""

    job_id: str = ""
    partition: str = ""
    submitted: float = 0.0  # when sbatch accepted it: a queue listing older than this is blind
    poll_s: float = 15.0
    requeue: bool = False

    @classmethod
    def of(cls, raw: dict[str, object]) -> SlurmRecord:
        def num(key: str, default: float) -> float:
            value = raw.get(key, default)
            return float(value) if isinstance(value, int | float) else default

        return cls(
            job_id=str(raw.get("job_id") or ""),
            partition=str(raw.get("partition") or ""),
            submitted=num("submitted", 0.0),
            poll_s=num("poll_s", 15.0),
            requeue=bool(raw.get("requeue", False)),
        )


def ended_status(state: str) -> tuple[str, str, str]:
    """(status, why, hint) for a job that ended in `state` (an unknown state: crashed)."""
    base = state.split()[0] if state else ""  # `CANCELLED by 0` in some listings
    return ENDED.get(base, ("crashed", f"its job ended ({state or 'state unknown'})", ""))
