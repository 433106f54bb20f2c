"""Run metadata (`meta.json`, written by the run's engine) and labels (`label.json`, by people).

Each file has one writer at a time. `meta.json` is written by the launcher when it creates the
run and by the run's engine process from then on; `label.json` (name, tags, notes) is written
by the CLI/TUI. Both are replaced atomically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuneterm.store.files import atomic_write_json, read_json

FORMAT_VERSION = 1

# Statuses written to meta.json by the launcher or engine.
# `submitted`: the run's Slurm job is submitted; the engine starts when the job does.
# `pending`: derived by readers from Slurm's queue: the job waits (meta.json `slurm.job_id`).
ACTIVE = ("created", "submitted", "pending", "starting", "running", "stopping")
# A queued run has a folder and a validated config but no engine yet (see tuneterm/runqueue.py).
QUEUED = "queued"
FINAL = ("completed", "failed", "stopped", "cancelled")
# Statuses derived by readers: the process died without a final status; a script run's
# supervisor died while processes of its script live on; the files are damaged; a run of
# another tool (tuneterm.sources) whose files have not changed for a while.
DERIVED = ("crashed", "orphaned", "unreadable", "ended")
STATUSES = (*ACTIVE, QUEUED, *FINAL, *DERIVED)
STARTUP_GRACE = 60.0  # seconds a `created` run may wait for its engine to come up


INPUT_BOUND = 0.3  # a run waiting on data for this fraction of its step time is input-bound


class ScriptGroup(BaseModel):
    """A script run's processes (tuneterm/script/): the process group its script leads, from
    the group's start time, and the processes seen under the supervisor (pid, start time)."""

    model_config = ConfigDict(extra="ignore")

    pgid: int = 0
    start: float = 0.0
    procs: list[tuple[int, float]] = Field(default_factory=list)


class RunMeta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: int = FORMAT_VERSION
    id: str
    name: str = ""
    status: str = "created"
    task: str = "classify"
    model: str = ""
    dataset: str = ""
    created: float = Field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    updated: float = Field(default_factory=time.time)
    pid: int = 0
    pid_start: float = 0.0
    host: str = ""
    device: str = ""
    world_size: int = 1  # processes of a distributed run (train.gpus x dist.nnodes)
    devices: list[dict[str, Any]] = Field(default_factory=list)  # per rank: rank, host, device, pid
    versions: dict[str, str] = Field(default_factory=dict)
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    last_loss: float | None = None
    throughput: float | None = None
    data_wait: float | None = None  # fraction of step time spent waiting for data, last interval
    gpu_mem_peak: int = 0  # bytes: peak memory allocated on the run's GPU
    best: dict[str, Any] = Field(default_factory=dict)
    final: dict[str, Any] = Field(default_factory=dict)
    # The run's metric spec (tuneterm.tasks.TaskSpec.metric_spec): which metrics it reports,
    # their labels and formats, which way each is better, and which one picks best.pt. Written
    # when the run is created, so readers render any kind of run from data alone; read it with
    # tuneterm.tasks.metric_spec_of_run (the store knows no kinds).
    metrics: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, int | float] = Field(default_factory=dict)
    techniques: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, int] = Field(default_factory=dict)
    classes: list[str] = Field(default_factory=list)
    error: str = ""
    resumes: int = 0
    # Seconds between the run's attempts (stopped, crashed, waiting in the queue): not trained,
    # so not in its elapsed time.
    paused_s: float = 0.0
    events: int = 0  # events in the run's queue, written with the final status
    parent: str = ""
    # The runs a run was made from without training (a model soup: tuneterm/runs/soup.py).
    parents: list[str] = Field(default_factory=list)
    # A hash of the model's starting weights (the new head left out: it is drawn per seed), so
    # runs fine-tuned from the same start can be told apart from the rest (a soup needs that).
    init_hash: str = ""
    # The run queue (tuneterm/runqueue.py): order among queued runs, when the scheduler took
    # the run off the queue, the status a queued resume returns to if cancelled, and the
    # CUDA_VISIBLE_DEVICES the scheduler gave the engine ("cpu" on a machine without GPUs).
    queue_pos: int = 0
    dequeued: float | None = None
    queued_from: str = ""
    gpus: str = ""
    group: ScriptGroup = Field(default_factory=ScriptGroup)  # script runs only
    # A run of another tool (tuneterm.sources): the hyperparameters it logged (TensorBoard's
    # hparams, Lightning's hparams.yaml, MLflow's params); it has no config.toml.
    hparams: dict[str, Any] = Field(default_factory=dict)
    # How the last stop ended: "" (none), "clean" (the script ended by itself after the stop
    # signal) or "killed" (it was still running after script.stop_grace_s).
    stop_outcome: str = ""
    # A run on Slurm: its job (`job_id`, `123` or `123_4` in an array), partition, when it was
    # submitted, and its slurm.poll_s and slurm.requeue (tuneterm.slurm.SlurmRecord reads it).
    slurm: dict[str, Any] = Field(default_factory=dict)


class RunLabel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    tags: list[str] = Field(default_factory=list)
    notes: str = ""


class UnreadableRun(Exception):
    """A run folder whose metadata cannot be trusted; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_meta(path: Path) -> RunMeta:
    try:
        raw = read_json(path)
    except FileNotFoundError:
        raise UnreadableRun("meta.json is missing") from None
    except (ValueError, OSError) as exc:
        raise UnreadableRun(f"meta.json is damaged: {exc}") from None
    if not isinstance(raw, dict):
        raise UnreadableRun("meta.json is not a JSON object")
    version = raw.get("format", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UnreadableRun(
            f"meta.json format {version!r} is newer than this tuneterm reads ({FORMAT_VERSION}); "
            "upgrade tuneterm"
        )
    try:
        return RunMeta.model_validate(raw)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise UnreadableRun(f"meta.json has bad fields: {' '.join(first[:3])}") from None


def begin_resume(meta: RunMeta, now: float) -> None:
    """A new attempt of the run starts (the engine's or a script supervisor's resume): the time
    since the last one ended is a pause, not training."""
    last = meta.ended or meta.updated
    if meta.started is not None and last:
        meta.paused_s += max(0.0, now - last)
    meta.resumes += 1
    meta.error, meta.ended = "", None


def save_meta(path: Path, meta: RunMeta) -> None:
    meta.updated = time.time()
    atomic_write_json(path, meta.model_dump())


def load_label(path: Path) -> RunLabel:
    try:
        return RunLabel.model_validate(read_json(path))
    except FileNotFoundError:
        return RunLabel()
    except (ValueError, OSError):
        return RunLabel()  # a damaged label loses only cosmetics; the run stays usable


def save_label(path: Path, label: RunLabel) -> None:
    atomic_write_json(path, label.model_dump())
