"""The run lifecycle: what a new run folder is made from, which statuses may resume, the errors a
wrong-status action raises, and the checks a resume makes. Used by the launcher (start and
resume now) and the queue (later), so both make and refuse runs alike; neither imports the
other for this.

Also the end of a script run whose supervisor is gone (`orphaned`): its processes are found
by pid + start time, or by its process group and the run folder in their environment, and
only those are signalled."""

from __future__ import annotations

import signal
from pathlib import Path

from tuneterm import tasks
from tuneterm.config import ConfigError, ConfigIssue, RunConfig, run_config, to_toml
from tuneterm.config.scriptargs import launch_folder
from tuneterm.proc import (
    ProcessIdentity,
    is_alive,
    signal_group,
    wait_gone,
    wait_group_gone,
)
from tuneterm.store.runs import NewRun, RunInfo, RunStore, script_group, script_processes

RESUMABLE = ("stopped", "crashed", "failed")
SHUTDOWN_WAIT = 15.0
KILL_WAIT = 5.0  # seconds for SIGKILLed processes to be gone
DEFAULT_GRACE = 30.0  # script.stop_grace_s when the run's config cannot be read


class LaunchError(RuntimeError):
    """The engine process did not come up; the message carries the tail of engine.log."""


class RunStateError(RuntimeError):
    """The action does not fit the run's status (e.g. stopping a finished run)."""


def new_run(cfg: RunConfig, name: str = "") -> NewRun:
    """What the store makes a run folder from: the config as TOML, and the metric spec its kind
    and techniques report (the store knows neither the schema nor the kinds)."""
    init = cfg.model.init
    return NewRun(
        config_toml=to_toml(cfg),
        task=cfg.run.task,
        model=tasks.model_label(cfg),
        dataset=cfg.data.dataset,
        # a script's length is its own (train.epochs is unused): unknown until it reports
        epochs=0 if tasks.get(cfg.run.task).runner else cfg.train.epochs,
        metrics=tasks.run_metric_spec(cfg),
        name=name or cfg.run.name,
        parent=init.removeprefix("run:") if init.startswith("run:") else "",
        tags=list(cfg.run.tags),
        notes=cfg.run.notes,
    )


def identity(info: RunInfo) -> ProcessIdentity:
    assert info.meta is not None
    return ProcessIdentity(info.meta.pid, info.meta.pid_start, info.id)


def check_resumable(store: RunStore, run_id: str) -> tuple[RunInfo, RunConfig]:
    """The run and its config, if it may resume; RunStateError saying why not otherwise."""
    info = store.info(run_id, events=True)
    if info.source:
        raise RunStateError(f"run {run_id} was written by another tool ({info.source}); "
                            "tuneterm only reads it and cannot resume it")  # fmt: skip
    if info.status not in RESUMABLE or info.meta is None:
        why = f" ({info.reason})" if info.status in ("unreadable", "orphaned") else ""
        raise RunStateError(
            f"run {run_id} is {info.status}{why}; only {', '.join(RESUMABLE)} runs can be resumed"
        )
    try:
        cfg = run_config(store, run_id)
    except ConfigError as exc:
        raise RunStateError(f"run {run_id}: its config.toml no longer validates: {exc}") from None
    live = script_processes(info.meta, info.path)
    if live:  # a second copy would write into the same run beside the first
        pids = ", ".join(str(p) for p in sorted(live)[:5])
        raise RunStateError(
            f"run {run_id}: processes of its script still run (pid {pids}); end them first "
            f"with `tuneterm stop --force {run_id}`"
        )
    check_workdir(cfg)
    return info, cfg


def record_launch_folder(cfg: RunConfig) -> None:
    """A script run keeps the folder it was launched from, absolute, in its config: resume,
    the queue's scheduler and sweeps start it there, wherever they themselves run."""
    if cfg.run.task == "script":
        cfg.script.cwd = launch_folder(cfg.script.cwd, Path.cwd())


def check_workdir(cfg: RunConfig) -> None:
    """A script run starts in the folder it was launched from; that folder must still be."""
    if cfg.run.task != "script" or not cfg.script.cwd:
        return
    where = Path(cfg.script.cwd).expanduser()
    if not where.is_dir():
        raise ConfigError(
            [
                ConfigIssue(
                    "script.cwd",
                    cfg.script.cwd,
                    "the folder the run was launched from no longer exists; recreate it, or "
                    "set another in the run's config.toml",
                )
            ]
        )


def end_orphaned(store: RunStore, info: RunInfo, force: bool, wait: float) -> str:
    """End what is left of a script run whose supervisor is gone: the stop signal, up to
    `script.stop_grace_s` (and at most `wait`) to end, then SIGKILL; at once with `force`.
    Returns "clean", "killed", "alive" (the wait ran out first) or "" (nothing was left)."""
    if info.meta is None:
        return ""
    group = script_group(info.meta, info.path)
    if group is None or not script_processes(info.meta, info.path):
        return ""
    try:
        sc = run_config(store, info.id).script
        grace, stop_signal = sc.stop_grace_s, signal.Signals[sc.stop_signal]
    except (ConfigError, OSError):
        grace, stop_signal = DEFAULT_GRACE, signal.SIGTERM
    if not force:
        signal_group(group, stop_signal)
        if wait_group_gone(group, min(grace, wait)):
            return "clean"
        if wait < grace:
            return "alive"
    signal_group(group, signal.SIGKILL)
    return "killed" if wait_group_gone(group, KILL_WAIT) else "alive"


def wait_script_gone(info: RunInfo, timeout: float = KILL_WAIT) -> bool:
    """After its supervisor: a SIGKILLed script takes a moment to be gone too (a run read in
    that moment would say `orphaned`)."""
    group = script_group(info.meta, info.path) if info.meta is not None else None
    return group is None or wait_group_gone(group, timeout)


def kill_script_group(info: RunInfo) -> None:
    """SIGKILL every verified process of a script run's group (after its supervisor's tree)."""
    group = script_group(info.meta, info.path) if info.meta is not None else None
    if group is not None:
        signal_group(group, signal.SIGKILL)


def wait_shut_down(info: RunInfo) -> None:
    """A final status is written a moment before the engine exits (it still closes its event
    writer and saves meta.json once more). Resuming or deleting in that moment would race it."""
    if info.meta is None or info.meta.pid <= 0:
        return
    ident = identity(info)
    if is_alive(ident) and not wait_gone(ident, SHUTDOWN_WAIT):
        raise RunStateError(
            f"run {info.id} is {info.status} but its engine (pid {ident.pid}) is still shutting "
            "down; try again in a moment"
        )
