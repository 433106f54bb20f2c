"""The event vocabulary: every kind of event a run's queue holds, and what each field means.

An event is one JSON object in an event segment (store/events.py). Every event carries the
envelope that `EventWriter.emit` stamps on it:

* `seq`: its position in the run's queue, from 0, never reused (int);
* `t`: unix time it was emitted, in seconds, rounded to the millisecond;
* `kind`: one of the names in `EVENT_TYPES`.

The producers are the engine (engine/) and a script run's supervisor (script/supervisor.py);
the readers (tui/history.py, health/state.py, the CLI) dispatch on `kind` through tables keyed
by these names. Readers take old stores as they are: `upgrade` maps the field names of older
tuneterms to today's, in this one place, as a segment is read.

User metrics never touch the store's own fields
-----------------------------------------------
A script names its own metrics (printed `name: value`, `[script] patterns`,
`tuneterm.log({...})`), and those names land as fields of `train` and `val` events next to the
fields the store itself relies on. The names in `RESERVED` are the store's: the envelope
(`seq`, `t`, `kind`), where a report sits (`step`, `epoch`) and the script API's byte cursor
(`off`). The rule: a user metric whose name is reserved is kept, renamed `user_<name>`
(`seq` -> `user_seq`); so that two user names can never land on one field, a user name that
is already `user_` + a reserved name (after any number of `user_` prefixes) gets one more
`user_` too (`user_seq` -> `user_user_seq`). Every other name is kept as it is. `user_name`
is the rule and `user_metrics` applies it to one report; the script supervisor applies it to
everything a script reports, and `EventWriter.emit` refuses any envelope field a caller
passes, so no producer can overwrite `seq`, `t` or `kind`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

# A decoded event as it comes out of a segment: the envelope plus the fields of its kind.
# Readers narrow it to the TypedDicts below through the dispatch tables.
Event = dict[str, Any]

ENVELOPE = frozenset({"seq", "t", "kind"})
# The fields of a metric event (`train`, `val`) that say where a report sits, not what it is.
LOCATION = frozenset({"step", "epoch", "off"})
RESERVED = ENVELOPE | LOCATION
USER_PREFIX = "user_"


class Envelope(TypedDict):
    seq: int
    t: float
    kind: str


class TrainEvent(Envelope):
    """One log interval of training (engine), or one report with a train loss (script)."""

    step: int  # optimizer steps so far
    epoch: float  # the epoch it belongs to, from 1 (a script's own count may be fractional)
    loss: float  # mean train loss over the interval (may be NaN or inf: health alerts on it)
    lr: NotRequired[float]  # learning rate of the head's parameter group
    examples_s: NotRequired[float]  # examples per second over the interval, whatever the kind
    data_wait: NotRequired[float]  # fraction of the interval spent waiting for input (0..1)
    gpu_mem_peak: NotRequired[int]  # bytes: torch's peak allocated memory (CUDA runs only)
    off: NotRequired[int]  # script API: byte offset in script/metrics.jsonl read up to


class ValEvent(Envelope):
    """One validation pass (engine, per epoch) or a script's report of other metrics.

    Beyond `step`, `epoch` and `off`, every numeric field is a metric: name -> float, named by
    the run's metric spec (meta.json `metrics`), e.g. `val_acc`, `val_loss`, `val_map50`."""

    step: int
    epoch: float
    off: NotRequired[int]


class TestResultEvent(Envelope):
    """The best checkpoint scored on the test split (or val when there is none), at the end.

    Beyond these, the fields are what the kind's `evaluate` reports: `acc`, `loss`, `f1`,
    `map50`..., and in full `per_class`, `report`, `confusion`."""

    split: Literal["test", "val"]
    epoch: int  # the epoch best.pt holds


class GpuFields(TypedDict):
    """One GPU of a `sys` sample (monitor.GpuSample)."""

    index: int
    name: str
    util: float  # percent busy
    mem_used: int  # bytes
    mem_total: int  # bytes
    temp: float  # Celsius
    power: float  # watts (NaN when NVML cannot say)


class SysEvent(Envelope):
    """A system sample, every few seconds while the run's process lives."""

    cpu: float  # percent of one core: the run's process and its children
    rss: float  # bytes resident: the run's process and its children
    sys_cpu: float  # percent of the whole machine
    ram_used: float  # bytes
    ram_total: float  # bytes
    gpus: NotRequired[list[GpuFields]]  # only where NVML sees GPUs
    gpu_mem_tree: NotRequired[int]  # script runs: bytes of GPU memory the script's tree holds


LogLevel = Literal["debug", "info", "warning", "error", "out"]


class LogEvent(Envelope):
    """A line for the run's log: the engine's own words, or (level `out`) a script's output."""

    level: LogLevel
    msg: str


class ErrorEvent(Envelope):
    """The exception that ended the engine, described for a person, with its traceback."""

    message: str
    traceback: str


class StatusEvent(Envelope):
    """A change of the run's status (runs/states.py names them)."""

    status: str
    error: NotRequired[str]  # why it failed or stopped
    events: NotRequired[int]  # on a final status: events in the queue, this one included
    events_written: NotRequired[int]  # ... and how many of them this process wrote


class CheckpointEvent(Envelope):
    """Checkpoint files are on disk."""

    which: Literal["last", "epoch"]  # a stop's last.pt, or an epoch's files
    step: int
    epoch: int  # epochs completed
    batch: NotRequired[int]  # `last`: batches done into the interrupted epoch
    best: NotRequired[bool]  # `epoch`: this epoch is the best so far
    best_epoch: NotRequired[int]  # `epoch`: the epoch best.pt now holds


class ResumeEvent(Envelope, total=False):
    """A resumed run continues from here. The engine's carries its checkpoint's `step`:
    readers drop what they hold past it. A script's has none (where it starts is its first
    step after this event): readers drop what they hold from that step on."""

    step: int
    epoch: int
    batch: int
    from_checkpoint: bool  # False: no last.pt yet, the run starts over


class DataEvent(Envelope):
    """The data set's size: examples per split, e.g. `train`, `val`, `test`: name -> int."""


class AdaptEvent(Envelope):
    """Domain adaptation's outcome at the end of training (engine/techniques/adapt.py)."""

    method: str  # adapt.method
    target_images: int
    target_acc: NotRequired[float]  # on labelled target data, when there is some
    target_acc_source_only: NotRequired[float]  # adabn: before the statistics were adapted
    domain_loss: NotRequired[float]  # dann/cdan: the domain classifier, last epoch
    domain_acc: NotRequired[float]


class UnfreezeEvent(Envelope):
    """Gradual unfreezing let one more stage train (freeze.strategy = "gradual")."""

    epoch: int  # the epoch starting, from 1
    frozen_stages: int
    trainable: int  # trainable parameters now


class EarlyStopEvent(Envelope):
    """Early stopping ends the run after this epoch."""

    epoch: int
    metric: str  # early_stop.metric
    best: float  # its best value
    patience: int


PhaseName = Literal["imports", "data", "model", "first_step"]


class PhaseEvent(Envelope):
    """A point of the engine's start-up, for the run's timing (runs/timing.py), in order:
    `imports` done, `data` ready (kinds that say so), `model` built (with the optimizer),
    `first_step` (the first optimizer step done)."""

    name: PhaseName
    process_start: NotRequired[float]  # `imports`: unix time the engine process started
    step: NotRequired[int]  # `first_step`: its step number


class StartEvent(Envelope):
    """How the engine trains, once everything is built, just before the `running` status."""

    device: str  # e.g. "cpu", "cuda:0"
    optimizer: str  # train.optimizer
    optimizer_impl: Literal["fused", "foreach", "for-loop"]  # engine/optim.py's choice
    warmup: NotRequired[list[str]]  # CUDA's warm-up, what it had done: "context", "cublas"...
    warmup_error: NotRequired[str]  # why the warm-up stopped short


EVENT_TYPES: dict[str, type[Envelope]] = {
    "train": TrainEvent,
    "val": ValEvent,
    "test": TestResultEvent,
    "sys": SysEvent,
    "log": LogEvent,
    "error": ErrorEvent,
    "status": StatusEvent,
    "checkpoint": CheckpointEvent,
    "resume": ResumeEvent,
    "data": DataEvent,
    "adapt": AdaptEvent,
    "unfreeze": UnfreezeEvent,
    "early_stop": EarlyStopEvent,
    "phase": PhaseEvent,
    "start": StartEvent,
}
KINDS = tuple(EVENT_TYPES)

# Field names of older tuneterms, per kind: old -> today's.
RENAMED: dict[str, dict[str, str]] = {
    "train": {"img_s": "examples_s"},  # it was always examples/s, images or not
}


def upgrade(event: Event) -> Event:
    """An event read from a segment, with older field names mapped to today's (in place)."""
    names = RENAMED.get(event.get("kind", ""))
    if names:
        for old, new in names.items():
            if old in event:
                value = event.pop(old)
                event.setdefault(new, value)
    return event


def user_name(name: str) -> str:
    """The field a user metric called `name` is stored under (see the module's docstring)."""
    bare = name
    while bare.startswith(USER_PREFIX):
        bare = bare[len(USER_PREFIX) :]
    return USER_PREFIX + name if bare in RESERVED else name


def user_metrics(values: Mapping[str, float]) -> dict[str, float]:
    """One report's metrics, under the names the store keeps them by."""
    if not any(user_name(k) != k for k in values):  # the usual case: nothing reserved
        return dict(values)
    return {user_name(k): v for k, v in values.items()}


def metric_fields(event: Mapping[str, Any]) -> dict[str, float]:
    """The metrics of a `val` event: every number that is not the envelope or its location."""
    return {
        k: float(v)
        for k, v in event.items()
        if k not in RESERVED and isinstance(v, int | float) and not isinstance(v, bool)
    }
