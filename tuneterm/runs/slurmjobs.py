"""Runs on Slurm: submit (one run, a sweep as one job array, a resume), stop, kill and cancel
through Slurm. Slurm is the engine here: tuneterm never schedules across nodes itself.

A job's batch script `exec`s the run's own process (the engine, or a script run's supervisor),
so Slurm's signals reach it directly: `--signal=B:USR1@grace_s` warns it before the time limit
(it checkpoints and ends resumable, with TIMEOUT as its reason; with slurm.requeue it requeues
its job, which resumes from last.pt), and `tuneterm stop` is `scancel --batch --signal=TERM`.

Nothing is left behind when Slurm refuses: every check that can be made comes before a run
folder exists (the partition, sbatch itself), and a job sbatch refuses takes its run folders
with it. The job is submitted held and released once meta.json records it, so the run's
process never races the launcher for meta.json.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from tuneterm import tasks
from tuneterm.config import ConfigError, ConfigIssue, RunConfig, run_config
from tuneterm.runs import torchrun
from tuneterm.runs.lifecycle import (
    LaunchError,
    RunStateError,
    check_resumable,
    new_run,
    record_launch_folder,
)
from tuneterm.slurm import commands
from tuneterm.slurm.commands import SlurmError
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunInfo, RunStore

SCRIPT = "slurm.sbatch"
WARNING_SIGNAL = "USR1"  # = tuneterm.slurm.states; what the run's process takes as the warning
ENGINE_MODULE = "tuneterm.engine"


class SubmitError(LaunchError):
    """sbatch refused the job (its message); no run was left behind."""


def fit(cfg: RunConfig) -> RunConfig:
    """The config as its job runs it: the job's nodes and GPUs are the run's processes."""
    s = cfg.slurm
    cfg.dist.nnodes = s.nodes
    if cfg.run.task != "script":
        cfg.train.gpus = max(1, s.gpus_per_node)
    return cfg


def check(cfg: RunConfig) -> None:
    """What can be checked before anything is made: sbatch is here, and the partition exists."""
    partition = cfg.slurm.partition
    try:
        known = commands.partitions()
    except SlurmError as exc:
        raise ConfigError([ConfigIssue("--slurm", True, str(exc))]) from None
    if partition and partition not in known:
        raise ConfigError(
            [
                ConfigIssue(
                    "slurm.partition",
                    partition,
                    f"no such partition on this cluster; it has: {', '.join(known) or 'none'}",
                )
            ]
        )


def options(cfg: RunConfig, count: int = 1) -> list[str]:
    """sbatch's options for the job (an array of `count` elements when count > 1)."""
    s = cfg.slurm
    opts = [f"--job-name=tuneterm-{cfg.run.task}", f"--nodes={s.nodes}", "--output=/dev/null"]
    opts += [f"--{k.replace('_', '-')}={v}" for k, v in
             (("partition", s.partition), ("time", s.time), ("account", s.account),
              ("mem", s.mem), ("cpus_per_task", s.cpus_per_task or ""),
              ("gpus_per_node", s.gpus_per_node or "")) if v]  # fmt: skip
    if s.grace_s > 0:  # to the batch script, which is the run's own process (exec)
        target = "" if s.nodes > 1 else "B:"
        opts.append(f"--signal={target}{WARNING_SIGNAL}@{s.grace_s}")
    opts.append("--requeue" if s.requeue else "--no-requeue")
    if count > 1:
        opts.append(f"--array=0-{count - 1}")
    return opts + list(s.extra)


def batch_script(cfg: RunConfig, run_dirs: list[Path], resume: bool) -> str:
    """The job: run element SLURM_ARRAY_TASK_ID's folder (the only one without an array), its
    output appended to RUN/slurm-JOBID.out. The engine resumes when last.pt exists (a requeued
    job, a resume); a script run's supervisor when the job was requeued or this is a resume."""
    runner = tasks.get(cfg.run.task).runner
    python = shlex.quote(sys.executable)
    if runner:
        cmd = f'{python} -m {runner} "$RUN" $RESUME'
        again = '[ "${SLURM_RESTART_COUNT:-0}" != 0 ]'
    else:
        again = '[ -f "$RUN/checkpoints/last.pt" ]'
        cmd = f'{python} -m {ENGINE_MODULE} "$RUN" $RESUME'
        if cfg.train.gpus > 1:  # one torchrun agent, one engine per GPU
            agent = torchrun.torchrun_cmd(cfg, Path("RUN"), False, python=sys.executable)
            cmd = " ".join(shlex.quote(a) for a in agent[:-1]) + ' "$RUN" $RESUME'
    folders = " ".join(shlex.quote(str(d)) for d in run_dirs)
    lines = [
        "#!/bin/bash",
        "# tuneterm: " + ("a sweep, one run per array element" if len(run_dirs) > 1 else "a run"),
        "# Run folders (on a filesystem every node mounts): " + folders,
        f"RUNS=({folders})",
        'RUN="${RUNS[${SLURM_ARRAY_TASK_ID:-0}]}"',
        'exec >>"$RUN/slurm-${SLURM_JOB_ID}.out" 2>&1',
        f'RESUME="{"--resume" if resume else ""}"',
        f"if {again}; then RESUME=--resume; fi",
        *(f"export {k}={v}" for k, v in torchrun.SHUTDOWN_TIMEOUT_ENV.items()),
        f"export TUNETERM_SLURM_REQUEUE={int(cfg.slurm.requeue)}",
        "exec " + cmd,
        "",
    ]
    return "\n".join(lines)


def submit(store: RunStore, cfgs: list[tuple[RunConfig, str]]) -> list[RunInfo]:
    """Create one run per (config, name) and submit them as one job (an array for several).
    Raises ConfigError or SubmitError with nothing created."""
    first = fit(cfgs[0][0])
    check(first)
    for cfg, _ in cfgs:
        record_launch_folder(fit(cfg))
    infos = [store.create(new_run(cfg, name), status="submitted") for cfg, name in cfgs]
    try:
        dirs = [i.path for i in infos]
        script = dirs[0] / SCRIPT
        if len(dirs) > 1:  # one script for the array, in each run's folder for reference
            script = store.root / ".slurm" / f"array-{infos[0].id}.sbatch"
            script.parent.mkdir(exist_ok=True)
        return _submit_job(store, first, infos, script, resume=False)
    except BaseException:
        for info in infos:
            store.remove_half_made(info.id)
        raise


def resubmit(store: RunStore, run_id: str) -> RunInfo:
    """`resume --slurm`: a new job for the same run folder; it continues from last.pt."""
    info, cfg = check_resumable(store, run_id)
    check(fit(cfg))
    return _submit_job(store, cfg, [info], info.path / SCRIPT, resume=True)[0]


def _submit_job(
    store: RunStore, cfg: RunConfig, infos: list[RunInfo], script: Path, resume: bool
) -> list[RunInfo]:
    if cfg.slurm.nodes > 1:  # srun starts one torchrun agent per node
        if len(infos) > 1:
            raise ConfigError([ConfigIssue("slurm.nodes", cfg.slurm.nodes, "a sweep's runs "
                                           "take one node each")])  # fmt: skip
        nodes = torchrun.SlurmJob(cfg.slurm.nodes, cfg.slurm.gpus_per_node)
        script.write_text(torchrun.sbatch_script(infos[0].path, nodes, python=sys.executable))
    else:
        script.write_text(batch_script(cfg, [i.path for i in infos], resume))
    script.chmod(0o755)
    opts = options(cfg, len(infos))
    held = "--hold" in opts or "-H" in opts
    try:
        job = commands.sbatch([*opts, *([] if held else ["--hold"])], script)
    except SlurmError as exc:
        raise SubmitError(str(exc)) from None
    submitted = time.time()
    for n, info in enumerate(infos):
        meta = load_meta(info.path / "meta.json")
        meta.status, meta.pid, meta.error, meta.ended = "submitted", 0, "", None
        meta.slurm = {
            "job_id": job if len(infos) == 1 else f"{job}_{n}",
            "partition": cfg.slurm.partition,
            "submitted": submitted,
            "poll_s": cfg.slurm.poll_s,
            "requeue": cfg.slurm.requeue,
        }
        save_meta(info.path / "meta.json", meta)
    if not held:
        try:
            commands.release(job)
        except SlurmError as exc:
            commands.scancel(job)
            raise SubmitError(str(exc)) from None
    return [store.info(i.id) for i in infos]


def job_of(info: RunInfo) -> str:
    """The run's job id, when its job is still in Slurm's queue (else "")."""
    if info.job is None or info.job.ended or info.meta is None:
        return ""
    return info.job.job_id


def stop(store: RunStore, info: RunInfo, force: bool, wait: float) -> RunInfo:
    """Stop a run through its job: a waiting job is cancelled (`cancelled`); a running one gets
    SIGTERM in its batch script, the run's process (it checkpoints: `stopped`), or with force
    is cancelled outright."""
    job = job_of(info)
    if info.job is not None and info.job.waiting:
        commands.scancel(job)
        _record_cancelled(info)
    elif force:
        commands.scancel(job)
    else:
        cfg = run_config(store, info.id)
        commands.scancel(job, signal="TERM", batch=cfg.slurm.nodes <= 1)
    return wait_settled(store, info.id, wait)


def _record_cancelled(info: RunInfo) -> None:
    """A job cancelled before its run started: say so in meta.json, which no process owns yet
    (Slurm keeps no record of a cancelled element of a pending job array)."""
    path = info.path / "meta.json"
    meta = load_meta(path)
    if meta.status == "submitted" and meta.pid <= 0:
        meta.status, meta.ended = "cancelled", time.time()
        meta.error = f"job {info.job.job_id if info.job else ''} cancelled before it started"
        save_meta(path, meta)


def wait_settled(store: RunStore, run_id: str, wait: float) -> RunInfo:
    """Poll (Slurm's queue is listed at most once per poll_s) until the run is no longer live."""
    deadline = time.monotonic() + wait
    info = store.info(run_id)
    while info.alive and time.monotonic() < deadline:
        time.sleep(0.2)
        info = store.info(run_id)
    return info


def cancel_for_delete(store: RunStore, info: RunInfo, force: bool) -> None:
    """`rm` of a run whose job is still queued or running: cancel the job first (a running
    one only with --force, as for a local run), and wait for it to leave."""
    job = job_of(info)
    if not job:
        return
    if info.job is not None and info.job.running and not force:
        raise RunStateError(
            f"run {info.id} runs as Slurm job {job}; stop it first (or delete with --force)"
        )
    commands.scancel(job)
    wait_settled(store, info.id, 60.0)
