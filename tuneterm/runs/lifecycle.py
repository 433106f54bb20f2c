"""The run lifecycle: what a new run folder is made from, which statuses may resume, the errors a
wrong-status action raises, and the checks a resume makes. Used by the launcher (start and
resume now) and the queue (later), so both make and refuse runs alike; neither imports the
other for this."""

from __future__ import annotations

from tuneterm import tasks
from tuneterm.config import ConfigError, RunConfig, model_label, run_config, to_toml
from tuneterm.proc import ProcessIdentity, is_alive, wait_gone
from tuneterm.store.runs import NewRun, RunInfo, RunStore

RESUMABLE = ("stopped", "crashed", "failed")
SHUTDOWN_WAIT = 15.0


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
        model=model_label(cfg),
        dataset=cfg.data.dataset,
        epochs=cfg.train.epochs,
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
    if info.status not in RESUMABLE or info.meta is None:
        why = f" ({info.reason})" if info.status == "unreadable" and info.reason else ""
        raise RunStateError(
            f"run {run_id} is {info.status}{why}; only {', '.join(RESUMABLE)} runs can be resumed"
        )
    try:
        cfg = run_config(store, run_id)
    except ConfigError as exc:
        raise RunStateError(f"run {run_id}: its config.toml no longer validates: {exc}") from None
    return info, cfg


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
