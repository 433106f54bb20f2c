"""Slurm, the cluster engine: its commands as argument lists (never a shell), the map of its job
states, and the store's shared view of the queue (`jobs.JobView`: at most one `squeue` call
per `poll_s` for a whole runs folder, however many readers there are).

A leaf package: it imports nothing of tuneterm, so the store can read a run's Slurm state
when it derives the run's status, and the engine and a script's supervisor can requeue their
own job. Submitting, stopping and resuming runs through Slurm is `tuneterm.runs.slurmjobs`.
"""

from tuneterm.slurm.commands import SlurmError
from tuneterm.slurm.states import JobState, SlurmRecord

__all__ = ["JobState", "SlurmError", "SlurmRecord"]
