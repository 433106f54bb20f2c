"""Start, stop, kill, resume and delete engine processes. The API the CLI and the TUI share.

An engine runs detached in its own session (`start_new_session`), with its output in the
run's `engine.log`, so it outlives the terminal, the TUI, the CLI and the SSH session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tuneterm import tasks
from tuneterm.config import ConfigError, ConfigIssue, RunConfig, run_config
from tuneterm.engine import kinds
from tuneterm.health import watch as health_watch
from tuneterm.proc import (
    is_torchrun,
    kill_tree,
    send_signal,
    signal_workers,
    wait_gone,
)
from tuneterm.runs import runqueue, slurmjobs, torchrun
from tuneterm.runs.lifecycle import (
    RESUMABLE,
    LaunchError,
    RunStateError,
    check_resumable,
    end_orphaned,
    kill_script_group,
    new_run,
    record_launch_folder,
    wait_script_gone,
    wait_shut_down,
)
from tuneterm.runs.lifecycle import identity as _identity
from tuneterm.runs.torchrun import SlurmJob
from tuneterm.store.files import FILE_MODE
from tuneterm.store.meta import QUEUED, UnreadableRun, load_meta, save_meta
from tuneterm.store.runs import RunInfo, RunStore

__all__ = ["RESUMABLE", "LaunchError", "RunStateError", "delete", "resume", "start", "stop"]

HANDSHAKE_TIMEOUT = 60.0
MULTI_NODE_TIMEOUT = 900.0  # torchrun's rendezvous waits up to 600 s for the other nodes
# The engine command; the run folder (and `--resume`) are appended. Tests swap in an
# engine-like process through this (never through the environment).
ENGINE_CMD = [sys.executable, "-m", "tuneterm.engine"]


def validate(cfg: RunConfig, store: RunStore, here: bool = True) -> None:
    """Every check that can be made before anything is created (imports torchvision).
    `here = False`: the run starts elsewhere (a batch job), so this machine's devices and
    rendezvous settings are not checked."""
    missing = tasks.missing_packages(cfg)  # before importing what is missing
    if missing:
        raise ConfigError(missing)
    kinds.get(cfg.run.task).validate(cfg, store)
    if here:
        torchrun.check(cfg)
        _check_devices(cfg)


def _check_devices(cfg: RunConfig) -> None:
    """train.gpus on this machine: no more than its CUDA devices; without CUDA, CPU processes
    (gloo), where SyncBatchNorm cannot run."""
    t = cfg.train
    if t.gpus <= 1:
        return
    import torch

    cuda = torch.cuda.is_available() and t.device != "cpu"
    if cuda and t.gpus > torch.cuda.device_count():
        raise ConfigError(
            [
                ConfigIssue(
                    "train.gpus",
                    t.gpus,
                    f"this machine has {torch.cuda.device_count()} CUDA device(s) visible",
                )
            ]
        )
    if not cuda and t.sync_bn:
        raise ConfigError(
            [
                ConfigIssue(
                    "train.sync_bn",
                    True,
                    "SyncBatchNorm needs CUDA; this run's processes use the CPU (gloo)",
                )
            ]
        )


def start(
    store: RunStore,
    cfg: RunConfig,
    name: str = "",
    checked: bool = False,
    env: Mapping[str, str] | None = None,
) -> RunInfo:
    """Validate, create the run folder, and start its engine. Raises ConfigError before
    creating anything if the config cannot run. `env` adds to the engine's environment."""
    record_launch_folder(cfg)
    if not checked:
        validate(cfg, store)
    info = store.create(new_run(cfg, name))
    try:
        _spawn(store, info.id, resume=False, env=env)
    except LaunchError:
        raise
    except BaseException:
        store.remove_half_made(info.id)
        raise
    return store.info(info.id)


def start_created(
    store: RunStore, run_id: str, resume: bool = False, env: Mapping[str, str] | None = None
) -> RunInfo:
    """Start the engine of a run folder that already exists (the queue scheduler's launch);
    `env` adds to the engine's environment (e.g. CUDA_VISIBLE_DEVICES)."""
    _spawn(store, run_id, resume=resume, env=env)
    return store.info(run_id)


def prepare_slurm(
    store: RunStore, cfg: RunConfig, job: SlurmJob, name: str = "", out: Path | None = None
) -> tuple[RunInfo, Path]:
    """Validate, create the run folder (status `submitted`) and write its sbatch script
    (default: RUN_DIR/slurm.sbatch). The run folder must be on a filesystem every node mounts."""
    validate(cfg, store, here=False)
    info = store.create(new_run(cfg, name), status="submitted")
    script = out or info.path / "slurm.sbatch"
    script.write_text(torchrun.sbatch_script(info.path, job, python=ENGINE_CMD[0]))
    script.chmod(0o755)
    return info, script


def submit_slurm(store: RunStore, cfgs: list[tuple[RunConfig, str]]) -> list[RunInfo]:
    """Validate, then create the runs and submit them to Slurm as one job (an array for
    several); nothing is left behind when Slurm refuses (see runs/slurmjobs.py)."""
    for cfg, _ in cfgs:
        validate(slurmjobs.fit(cfg), store, here=False)
    return slurmjobs.submit(store, cfgs)


def _spawn(store: RunStore, run_id: str, resume: bool, env: Mapping[str, str] | None = None) -> int:
    run_dir = store.run_dir(run_id)
    cmd = [*ENGINE_CMD, str(run_dir)]
    if resume:
        cmd.append("--resume")
    env = dict(os.environ, **(env or {}), PYTHONUNBUFFERED="1")
    cfg = run_config(store, run_id)
    runner = tasks.get(cfg.run.task).runner
    if runner:  # a kind with a process of its own (a script run's supervisor)
        cmd = [ENGINE_CMD[0], "-m", runner, str(run_dir), *(["--resume"] if resume else [])]
    distributed = not runner and torchrun.distributed(cfg)
    if distributed:  # the torchrun agent, then one engine per rank
        cmd = torchrun.torchrun_cmd(cfg, run_dir, resume, python=ENGINE_CMD[0])
        env.update(torchrun.SHUTDOWN_TIMEOUT_ENV)
    before = _meta_pid(run_dir)
    # Temp files of atomic writes that a kill -9 interrupted (meta.json, checkpoints: these can
    # be gigabytes). No engine of this run is alive now, so none of them is being written.
    for stale in [*run_dir.glob(".*.tmp"), *(run_dir / "checkpoints").glob(".*.tmp")]:
        stale.unlink(missing_ok=True)
    log_fd = os.open(run_dir / "engine.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    os.fchmod(log_fd, FILE_MODE)  # not world-writable, whatever the umask
    with open(log_fd, "ab") as log:
        if distributed:
            # Other nodes of a multi-node run start their share with this same line.
            log.write(("launch: " + " ".join(cmd) + "\n").encode())
            log.flush()
        popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    # Reap the child when it ends, so a long-lived TUI or test process keeps no zombies.
    threading.Thread(target=popen.wait, name=f"reap-{popen.pid}", daemon=True).start()
    # Notifications reach the user with no TUI open: the store's health watcher (only when
    # settings.toml has a [notify] command; one per runs folder; it exits when runs are idle).
    health_watch.ensure_watcher(store)
    try:
        if cfg.dist.nnodes > 1:
            # Rank 0 may be on another node, and the rendezvous waits for every node.
            return _handshake(popen, run_dir, before, MULTI_NODE_TIMEOUT, any_pid=True)
        return _handshake(popen, run_dir, before)
    except BaseException:
        # Ctrl-C or a failed start: never leave an engine nobody knows about.
        if popen.poll() is None:
            popen.kill()
        raise


def _handshake(
    popen: subprocess.Popen[bytes],
    run_dir: Path,
    before: int,
    timeout: float = HANDSHAKE_TIMEOUT,
    any_pid: bool = False,
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _meta_pid(run_dir)
        if pid != before and (pid == popen.pid or (any_pid and pid > 0)):
            return pid
        if popen.poll() is not None and _meta_pid(run_dir) != popen.pid:
            message = f"engine exited with code {popen.returncode} before starting"
            _mark_failed(run_dir, before, message)
            raise LaunchError(message + ":\n" + _tail(run_dir / "engine.log"))
        time.sleep(0.02)
    raise LaunchError(
        f"engine did not start within {timeout:.0f} s:\n" + _tail(run_dir / "engine.log")
    )


def _mark_failed(run_dir: Path, before: int, message: str) -> None:
    """The engine died before it owned meta.json: record that, so the run reads `failed` with
    the reason at once rather than `starting` until the grace period ends."""
    try:
        meta = load_meta(run_dir / "meta.json")
    except UnreadableRun:
        return  # never overwrite a file we cannot read
    if meta.pid != before:  # the engine did write it after all: it is the owner
        return
    meta.status, meta.error, meta.ended = "failed", message + " (see engine.log)", time.time()
    save_meta(run_dir / "meta.json", meta)


def _meta_pid(run_dir: Path) -> int:
    try:
        return load_meta(run_dir / "meta.json").pid
    except UnreadableRun:
        return 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no engine.log)"


def stop(store: RunStore, run_id: str, force: bool = False, wait: float = 0.0) -> RunInfo:
    """SIGTERM (graceful: checkpoint, then `stopped`) or, with force, SIGKILL.

    Only the run's own process is signalled: pid, start time and command line must match.
    A queued run has no process: stopping or killing it cancels it (see runqueue.cancel).
    """
    info = store.info(run_id)
    if info.source:  # no process of another tool's run can be proven its own: never guess
        raise RunStateError(
            f"run {run_id} was written by another tool ({info.source}, {info.path}); tuneterm "
            "did not start it and cannot prove a live process is its own, so it signals none"
        )
    if info.status == QUEUED:
        return runqueue.cancel(store, run_id)
    if slurmjobs.job_of(info):  # through Slurm: scancel
        return slurmjobs.stop(store, info, force, wait)
    if not info.alive and end_orphaned(store, info, force, wait):  # a script run's leftovers
        return store.info(run_id)
    if not info.alive or info.meta is None or info.meta.pid <= 0:
        raise RunStateError(f"run {run_id} is {info.status}, not running")
    ident = _identity(info)
    if force:
        sent = kill_tree(ident)
        kill_script_group(info)  # a script's processes that left its supervisor's tree
    elif is_torchrun(ident):
        sent = signal_workers(ident, signal.SIGTERM)
    else:
        sent = send_signal(ident, signal.SIGTERM)
    if not sent:
        raise RunStateError(f"run {run_id}: its process is no longer running")
    if wait > 0 and wait_gone(ident, wait):
        wait_script_gone(info)
    return store.info(run_id)


def kill(store: RunStore, run_id: str, wait: float = 5.0) -> RunInfo:
    return stop(store, run_id, force=True, wait=wait)


def resume(store: RunStore, run_id: str) -> RunInfo:
    info, cfg = check_resumable(store, run_id)
    if cfg.dist.nnodes > 1 and (info.path / "slurm.sbatch").is_file():
        raise RunStateError(
            f"run {run_id} runs on {cfg.dist.nnodes} nodes: resume it through its batch job, "
            f"`sbatch {info.path / 'slurm.sbatch'}` (the script resumes from last.pt)"
        )
    wait_shut_down(info)
    _spawn(store, run_id, resume=True)
    return store.info(run_id)


def delete(store: RunStore, run_id: str, force: bool = False) -> None:
    info = store.info(run_id)
    if info.source:
        raise RunStateError(
            f"run {run_id} was written by another tool ({info.source}, {info.path}); "
            "tuneterm only reads it and deletes nothing of it"
        )
    if info.status == QUEUED:  # off the queue first, so the scheduler cannot start it now
        info = runqueue.cancel(store, run_id)
    if slurmjobs.job_of(info):  # its job first: scancel, then wait for it to leave
        slurmjobs.cancel_for_delete(store, info, force)
        info = store.info(run_id)
    if info.alive or info.status == "orphaned":
        if not force:
            raise RunStateError(
                f"run {run_id} is {info.status}; stop it first (or delete with --force)"
            )
        if info.status == "orphaned":
            end_orphaned(store, info, force=True, wait=0.0)
        elif info.meta is not None and info.meta.pid > 0:
            kill(store, run_id)
    else:
        wait_shut_down(info)
    store.delete(run_id)
