"""The sections about a run's process rather than its recipe: [health] (what the watcher
looks for and what the engine does itself) and [script] (your own training script)."""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from tuneterm.config.choices import OnNan, StopSignal, one_of
from tuneterm.config.scriptargs import command_args, command_label
from tuneterm.config.section import Section as _Section


class HealthSection(_Section):
    """What the health watcher (tuneterm/health/) looks for, and what the engine does itself:
    the one type of every health threshold, read by the detectors as it is written here."""

    on_nan: OnNan = Field(
        "stop",
        description=f"{one_of(OnNan)}: a NaN or inf train loss fails the run keeping the "
        "checkpoint from before it (stop), skips that batch's update (skip: one host sync per "
        "step), or only raises the alert (ignore)",
    )
    spike_factor: float = Field(
        5.0, gt=1.0, description="A train loss this many times its smoothed level is a spike"
    )
    spike_warmup: int = Field(
        5, ge=0, description="Train points seen before loss spikes are looked for"
    )
    stall_factor: float = Field(
        10.0,
        gt=1.0,
        description="No event for this many times the run's usual interval (and at least "
        "stall_seconds) while its process lives: stalled",
    )
    stall_seconds: float = Field(
        60.0, gt=0.0, description="... and never before this many seconds of silence"
    )
    gpu_idle_util: float = Field(
        5.0, ge=0.0, le=100.0, description="A GPU under this many % busy is idle"
    )
    gpu_idle_minutes: float = Field(
        3.0, gt=0.0, description="The run's GPUs idle this long while it runs: gpu_idle"
    )
    input_bound: float = Field(
        0.3,  # = store.meta.INPUT_BOUND, which the engine's own warning and the speed pane use
        gt=0.0,
        le=1.0,
        description="Fraction of step time spent waiting for data that counts as input-bound",
    )
    input_bound_streak: int = Field(
        3, ge=1, description="... for this many log intervals in a row: input_bound"
    )
    slowdown_factor: float = Field(
        2.0, gt=1.0, description="Examples/s this many times below the run's own earlier speed"
    )
    slowdown_window: int = Field(
        5, ge=1, description="Train points in each of the two speed medians slowdown compares"
    )
    disk_reserve_gb: float = Field(
        2.0,
        ge=0.0,
        description="Free space (GiB) the engine keeps on the runs folder's disk: below it, no "
        "more epoch checkpoints are written (the last one and a stop still are), and disk_full",
    )
    disk_free_fraction: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="disk_full also below this fraction of the disk free, whichever is larger",
    )
    pending_minutes: float = Field(
        60.0, gt=0.0, description="A Slurm job pending longer than this: pending_long"
    )


class ScriptSection(_Section):
    """Your own training script as a run (run.task = "script"; see tuneterm/script/)."""

    command: list[str] = Field(
        default_factory=list,
        description='The command, as argv (never through a shell): ["python", "train.py"]',
    )
    cwd: str = Field(
        "",
        description="Working folder of the command; `run` and `sweep` store the folder they "
        "were called from (absolute), which `resume` and the queue use too",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Added to its environment")
    patterns: list[str] = Field(
        default_factory=list,
        description="Your own metric patterns: regular expressions whose named groups are "
        'metrics, e.g. "acc (?P<val_acc>[0-9.]+)"',
    )
    metric: str = Field(
        "",
        description="The metric that ranks the run (ls BEST, sweep-best, compare); empty: an "
        "accuracy-like eval metric, else an eval loss, else the train loss",
    )
    stop_signal: StopSignal = Field(
        "SIGTERM", description="What `tuneterm stop` sends the script's process group"
    )
    stop_grace_s: float = Field(
        30.0,
        gt=0.0,
        description="Seconds a script may take to end after the stop signal; then it is "
        "killed, with every process it started",
    )
    max_metrics: int = Field(
        300,
        ge=1,
        description="Distinct metric names drawn as curves at most; later new names stay in "
        "the events only (one warning says so)",
    )
    resume_args: list[str] = Field(
        default_factory=list,
        description="Appended on resume; {checkpoint_dir} and {run_dir} are filled in, e.g. "
        '["--resume", "{checkpoint_dir}/last.ckpt"]',
    )
    label: str = Field("", description="Shown as the run's model; empty: the script's name")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Read from the command's --key value arguments (compare shows args.KEY)",
    )

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("command"), list) and data["command"]:
            argv = [str(a) for a in data["command"]]
            data = {**data, "args": command_args(argv)}
            if not data.get("label"):
                data["label"] = command_label(argv)
        return data


class SlurmSection(_Section):
    """The run's Slurm job (`tuneterm run --slurm`, `sweep --slurm`, `resume --slurm`)."""

    partition: str = Field("", description="sbatch --partition; empty: the cluster's default")
    time: str = Field("", description='sbatch --time, e.g. "04:00:00"; empty: the partition\'s')
    account: str = Field("", description="sbatch --account")
    nodes: int = Field(1, ge=1, description="Nodes of the job (more than 1: torchrun on each)")
    cpus_per_task: int = Field(0, ge=0, description="sbatch --cpus-per-task; 0: not set")
    mem: str = Field("", description='sbatch --mem per node, e.g. "32G"; empty: not set')
    gpus_per_node: int = Field(
        0, ge=0, description="GPUs per node (one process each); 0: a CPU job with no gres line"
    )
    extra: list[str] = Field(
        default_factory=list, description='Further sbatch options, e.g. ["--hold", "--qos=low"]'
    )
    requeue: bool = Field(
        False,
        description="A job preempted or at its time limit is requeued and resumes from its "
        "checkpoint by itself",
    )
    grace_s: int = Field(
        120,
        ge=0,
        le=65535,
        description="Seconds before the time limit that the run is warned (it checkpoints and "
        "ends resumable); 0: no warning",
    )
    poll_s: float = Field(
        15.0,
        ge=0.5,
        description="Seconds between two looks at Slurm's queue, for the whole runs folder",
    )

    @field_validator("time", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> Any:
        """A bare number is minutes, as sbatch reads it; 04:00:00 unquoted (a TOML time)."""
        if isinstance(value, datetime.time):
            return value.strftime("%H:%M:%S")
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
