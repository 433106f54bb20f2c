"""Slurm's commands, each an argument list run without a shell. Whatever fails says so in a
`SlurmError` carrying Slurm's own message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tuneterm.slurm.states import JobState

TIMEOUT_S = 60.0
# One line per job: id (123 or 123_4), state, reason, partition, nodes. `|` never appears in
# any of them.
SQUEUE_FORMAT = "%i|%T|%r|%P|%N"


class SlurmError(RuntimeError):
    """A Slurm command failed or is missing; the message is Slurm's (or says which is missing)."""


def run(cmd: list[str], timeout: float = TIMEOUT_S) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SlurmError(f"{cmd[0]} is not on PATH: is this a Slurm login node?") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{cmd[0]} did not answer within {timeout:g} s") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise SlurmError(f"{cmd[0]}: {message}")
    return done.stdout


def sbatch(options: list[str], script: Path) -> str:
    """Submit `script`; its job id (an array's base id)."""
    out = run(["sbatch", "--parsable", *options, str(script)])
    return out.strip().split(";")[0]


def squeue() -> list[JobState]:
    """Every job of this user Slurm still knows of, each element of an array on its own line,
    those that ended recently included (`--states=all`)."""
    out = run(["squeue", "--noheader", "--me", "--array", "--states=all", "-o", SQUEUE_FORMAT])
    jobs = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 5:
            job_id, state, reason, partition, nodes = (p.strip() for p in parts)
            reason = "" if reason == "None" else reason
            jobs.append(JobState(job_id, state, reason, partition, nodes))
    return jobs


def scancel(job_id: str, signal: str = "", batch: bool = False) -> None:
    """Cancel the job, or with `signal`, send it that signal (`batch`: to its batch script, which
    is the run's own process)."""
    cmd = ["scancel"]
    if signal:
        cmd.append(f"--signal={signal}")
    if batch:
        cmd.append("--batch")
    run([*cmd, job_id])


def release(job_id: str) -> None:
    run(["scontrol", "release", job_id])


def requeue(job_id: str) -> None:
    run(["scontrol", "requeue", job_id])


def partitions() -> list[str]:
    out = run(["sinfo", "--noheader", "--format=%R"])
    return sorted({p.strip() for p in out.split() if p.strip()})


def show_config() -> dict[str, str]:
    out = run(["scontrol", "show", "config"])
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


_FIELD = re.compile(r"(\w+)=(\S*)")


def jobcomp_states(path: Path, tail_bytes: int = 4 << 20) -> dict[str, str]:
    """{job id: last state} of the jobs in a `jobcomp/filetxt` file (its last `tail_bytes`: the
    file grows by one line per job of the whole cluster)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        fields = dict(_FIELD.findall(line))
        job_id = fields.get("JobId", "")
        if "ArrayJobId" in fields and "ArrayTaskId" in fields:
            job_id = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"
        if job_id and "JobState" in fields:
            found[job_id] = fields["JobState"]
    return found


def sacct_states(since: str = "now-7days") -> dict[str, str]:
    """{job id: state} of this user's jobs since `since`, where Slurm keeps accounting."""
    out = run(["sacct", "--noheader", "--parsable2", "--allocations", "--starttime", since,
               "--format=JobID,State"])  # fmt: skip
    found = {}
    for line in out.splitlines():
        job_id, _, state = line.partition("|")
        if job_id and state:
            found[job_id.strip()] = state.split()[0]
    return found


# Set in a job's environment by its batch script (runs/slurmjobs.py): slurm.requeue.
REQUEUE_ENV = "TUNETERM_SLURM_REQUEUE"
WARNING = "SIGUSR1"  # sbatch --signal=B:USR1@grace_s: the time limit is near
TIMEOUT_REASON = "TIMEOUT: its Slurm job's time limit is near"


def requeue_own_job() -> str:
    """After the time-limit warning, with slurm.requeue: requeue the job this process runs in
    (it starts again, resuming from last.pt). The job id, or "" when there was none to requeue."""
    job = os.environ.get("SLURM_JOB_ID", "")
    if not job or os.environ.get(REQUEUE_ENV) != "1":
        return ""
    try:
        requeue(job)
    except SlurmError as exc:
        print(f"tuneterm: could not requeue job {job}: {exc}", file=sys.stderr, flush=True)
        return ""
    return job
