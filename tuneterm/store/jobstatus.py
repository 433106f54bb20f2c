"""What Slurm's view of a run's job changes in the status a reader shows.

The run's process speaks for itself while it lives; Slurm speaks for the run where its process
cannot: while the job waits (`pending`, with Slurm's reason), when the job started but the
engine has not yet, and when the job ended without the run writing its own end (cancelled
while pending, its time limit, out of memory, a lost node, preemption)."""

from __future__ import annotations

import socket

from tuneterm.proc import ProcessIdentity, is_alive
from tuneterm.slurm.states import JobState, ended_status
from tuneterm.store.meta import ACTIVE, RunMeta


def job_status(meta: RunMeta, job: JobState) -> tuple[str, str] | None:
    """(status, reason) Slurm's state implies, or None where the run's own status stands."""
    jid = job.job_id
    if job.waiting:
        return "pending", f"job {jid} {job.state.lower()}: {job.reason or 'waiting'}"
    if job.running:
        if meta.status == "submitted":
            return "starting", f"job {jid} runs on {job.nodes or 'its node'}"
        return None
    if meta.status not in ACTIVE or _alive_here(meta):
        return None  # the run wrote its own end (or its process still runs)
    if not job.state:
        if meta.status == "submitted":
            return "crashed", (
                f"job {jid} left the queue before the run started, and Slurm keeps no record "
                "of how it ended (no accounting, no jobcomp file)"
            )
        return None  # the run's own last status (its process is gone: crashed)
    status, why, hint = ended_status(job.state)
    return status, f"job {jid}: {why}" + (f"; {hint.replace('JOBID', jid)}" if hint else "")


def _alive_here(meta: RunMeta) -> bool:
    if meta.pid <= 0 or (meta.host and meta.host != socket.gethostname()):
        return False
    return is_alive(ProcessIdentity(meta.pid, meta.pid_start, meta.id))
