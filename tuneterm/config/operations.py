"""The sections about a run's process rather than its recipe: [health] (what the watcher
looks for and what the engine does itself) and [script] (your own training script)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tuneterm.config.choices import OnNan, StopSignal, one_of
from tuneterm.config.scriptargs import command_args, command_label
from tuneterm.config.section import Section as _Section


class HealthSection(_Section):
    """What the health watcher (tuneterm/health/) looks for, and what the engine does itself."""

    on_nan: OnNan = Field(
        "stop",
        description=f"{one_of(OnNan)}: a NaN or inf train loss fails the run keeping the "
        "checkpoint from before it (stop), skips that batch's update (skip: one host sync per "
        "step), or only raises the alert (ignore)",
    )
    spike_factor: float = Field(
        5.0, gt=1.0, description="A train loss this many times its smoothed level is a spike"
    )
    stall_factor: float = Field(
        10.0,
        gt=1.0,
        description="No event for this many times the run's usual interval (and at least a "
        "minute) while its process lives: stalled",
    )
    stall_seconds: float = Field(
        60.0, gt=0.0, description="... and never before this many seconds of silence"
    )
    gpu_idle_minutes: float = Field(
        3.0, gt=0.0, description="The run's GPUs under 5% busy this long while it runs: idle"
    )
    slowdown_factor: float = Field(
        2.0, gt=1.0, description="Examples/s this many times below the run's own earlier speed"
    )
    disk_reserve_gb: float = Field(
        2.0,
        ge=0.0,
        description="Free space (GiB) the engine keeps on the runs folder's disk: below it, no "
        "more epoch checkpoints are written (the last one and a stop still are)",
    )


class ScriptSection(_Section):
    """Your own training script as a run (run.task = "script"; see tuneterm/script/)."""

    command: list[str] = Field(
        default_factory=list,
        description='The command, as argv (never through a shell): ["python", "train.py"]',
    )
    cwd: str = Field("", description="Working folder of the command; empty: where tuneterm ran")
    env: dict[str, str] = Field(default_factory=dict, description="Added to its environment")
    patterns: list[str] = Field(
        default_factory=list,
        description="Your own metric patterns: regular expressions whose named groups are "
        'metrics, e.g. "acc (?P<val_acc>[0-9.]+)"',
    )
    stop_signal: StopSignal = Field(
        "SIGTERM", description="What `tuneterm stop` sends the script's process group"
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
