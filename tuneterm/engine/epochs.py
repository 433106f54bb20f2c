"""The epoch loop: train an epoch, validate, keep the best, checkpoint.

The Trainer (engine/trainer.py) brings the hot path (`train_epoch`), the validation (`validate`,
which says what the val event reports and which number picks `best.pt`, from the kind's spec)
and the checkpoint contents (the kind's task object); `fit` does the rest:

- events: "val" after each epoch; "checkpoint" once the epoch's files are on disk;
- `best.pt` by the chosen metric, `last.pt` every epoch and on a stop (resumable mid-epoch);
- checkpoint files are written by a background thread while the next epoch trains
  (`speed.async_checkpoint`, see `background_writes`); a stop, the end of training and any
  error wait for the write in flight, so `test` and `resume` always find whole files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from tuneterm.config import RunConfig
from tuneterm.engine import checkpoint
from tuneterm.engine.guards import Room


class RunContext(Protocol):
    """What the loop needs from the process around it (see engine/process.py)."""

    ckpt_dir: Path

    def emit(self, kind: str, /, **fields: Any) -> None: ...
    def progress(self, force: bool = False, **fields: Any) -> None: ...
    def stop_requested(self) -> bool: ...


class QuietContext:
    """A RunContext for a trainer run in-process (lr-find, the outcome benches): a checkpoint
    folder and nothing else (no event file, no progress, never asked to stop)."""

    def __init__(self, ckpt_dir: Path, make: bool = False) -> None:
        self.ckpt_dir = ckpt_dir
        if make:
            ckpt_dir.mkdir(parents=True, exist_ok=True)

    def emit(self, kind: str, /, **fields: Any) -> None:
        pass

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return False


@dataclass
class State:
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    step: int = 0
    best: dict[str, Any] = field(default_factory=dict)


def training_state(tr: Any) -> dict[str, Any]:
    """What every kind's `last.pt` holds besides the model: optimizer, schedule, scaler and
    where the run is (`tr` is a trainer with `opt`, `sched`, `scaler` and `state`)."""
    st = tr.state
    return {
        "optimizer": tr.opt.state_dict(),
        "scheduler": tr.sched.state_dict(),
        "scaler": tr.scaler.state_dict(),
        "epoch": st.epoch,
        "batch": st.batch,
        "step": st.step,
        "best": st.best,
    }


def restore_training(tr: Any, ck: dict[str, Any]) -> None:
    """The inverse of `training_state` for a loaded `last.pt`."""
    tr.opt.load_state_dict(ck["optimizer"])
    tr.sched.load_state_dict(ck["scheduler"])
    tr.scaler.load_state_dict(ck["scaler"])
    tr.state = State(ck["epoch"], ck["batch"], ck["step"], dict(ck["best"]))


@dataclass
class Scored:
    """One validation pass as the task reports it."""

    event: dict[str, Any]  # the "val" event's metric fields
    metric: str  # the name of the number `best.pt` is picked by ...
    value: float  # ... and its value
    best: dict[str, Any]  # the metric fields kept with it in state.best
    higher: bool = True  # whether a larger value is better
    stop: bool = False  # early stopping asks to end the run here
    net: torch.nn.Module | None = None  # the model that was scored (e.g. the EMA copy)


class EpochTrainer(Protocol):
    cfg: RunConfig
    ctx: RunContext
    state: State
    device: torch.device

    def train_epoch(self) -> bool: ...
    def validate(self) -> Scored: ...
    def model_state(self, net: torch.nn.Module | None = None) -> dict[str, Any]: ...
    # Called by every process of a run at the same point (it may gather from DDP ranks);
    # None where the process writes no files (DDP ranks other than 0).
    def last_state(self) -> dict[str, Any] | None: ...
    def barrier(self) -> None: ...
    # Whether `test` can score the best model as it is in memory (no best.pt to read back).
    def tests_in_memory(self) -> bool: ...


def test_split(data: Any) -> tuple[Any, str]:
    """The split a run is tested on: the test split, or val when there is none."""
    return (data.test, "test") if len(data.test) else (data.val, "val")


def load_best(tr: Any) -> tuple[dict[str, Any], Any, str]:
    """For a trainer's `test`: best.pt loaded into `tr.model`, and the split to score it on
    with its name."""
    best = checkpoint.load(tr.ctx.ckpt_dir / "best.pt")
    tr.model.load_state_dict(best["model"], strict=not best.get("partial"))
    return (best, *test_split(tr.data))


def improved(best: dict[str, Any], s: Scored) -> bool:
    if not best:
        return True
    return s.value > best["value"] if s.higher else s.value < best["value"]


def background_writes(setting: str, device: torch.device) -> bool:
    """speed.async_checkpoint: "auto" writes in a background thread on a GPU (the training
    thread mostly waits for the device) or where training leaves a CPU core free. Not when
    every core trains: a busy extra thread stalls torch's OpenMP workers at each barrier, and
    that costs more than the write (measured on 2 cores: 8 steps took 1.35 s alone and 3.12 s
    beside a thread writing checkpoints; with 1 torch thread, no change)."""
    if setting != "auto":
        return setting == "on"
    if device.type == "cuda":
        return True
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return torch.get_num_threads() < (cpus or 1)


Clock = Callable[[], float]


def fit(
    tr: EpochTrainer,
    writer: checkpoint.Writer,
    overlap_test: bool = False,
    clock: Clock = time.perf_counter,
) -> str:
    """Train to the end or until stopped; returns "completed" or "stopped".

    The last epoch's files are written in the background, off the hot path. With
    `overlap_test`, where the trainer can test its best model as it is in memory
    (`tests_in_memory`), that write is left in flight while the test runs, and the caller
    waits for it (`writer.wait()`) before the run's final status. Otherwise fit waits, so
    best.pt is on disk before any rank tests it. `clock` times the checkpoint cadence
    (training time against write cost): a test passes its own to say what the epochs and
    writes cost, whatever the machine's speed."""
    try:
        outcome = _epochs(tr, writer, Cadence(tr.cfg.speed.checkpoint_budget, clock))
    except BaseException:
        writer.wait(quiet=True)  # the first error is the one to report
        raise
    if not (overlap_test and outcome == "completed" and tr.tests_in_memory()):
        writer.wait()
        tr.barrier()
    return outcome


class Cadence:
    """When an epoch's checkpoints are written: keeps their cost within `budget` (a fraction)
    of the training time. An epoch's files are written when the training time since the last
    write is at least the last write's cost / budget (so at every epoch whenever an epoch
    trains longer than that), and always at the last epoch and on a stop. budget 0: every
    epoch. The cost is what the training thread paid: the whole write in place; in the
    background, the snapshot plus the time it later waited for the write to finish."""

    def __init__(self, budget: float, clock: Clock = time.perf_counter) -> None:
        self.budget, self.cost, self.clock = budget, 0.0, clock
        self.since = clock()

    def due(self) -> bool:
        return self.budget <= 0 or (self.clock() - self.since) * self.budget >= self.cost

    def paid(self, started: float) -> None:
        now = self.clock()
        self.cost, self.since = now - started, now


def _epochs(tr: EpochTrainer, writer: checkpoint.Writer, cadence: Cadence) -> str:
    st, ctx, ckpt = tr.state, tr.ctx, tr.ctx.ckpt_dir
    room = Room(tr.cfg.health.disk_reserve_gb, ctx)
    pending: dict[str, Any] | None = None  # a best.pt not written yet (a snapshot)
    spare: dict[str, Any] | None = None  # the last snapshot, its host memory reused by the next
    while st.epoch < tr.cfg.train.epochs:
        if not tr.train_epoch():
            last = tr.last_state()
            files = [] if last is None else [(ckpt / "last.pt", last)]
            writer.write(([(ckpt / "best.pt", pending)] if pending else []) + files)
            writer.wait()
            ctx.emit("checkpoint", which="last", step=st.step, epoch=st.epoch, batch=st.batch)
            return "stopped"
        st.epoch, st.batch = st.epoch + 1, 0
        # Validation runs while the last epoch's files are still being written (so an event it
        # emits, e.g. "early_stop", may come before that epoch's "checkpoint"); the wait keeps
        # "checkpoint" before this "val", and what it blocked counts as the write's cost.
        s = tr.validate()
        cadence.cost += writer.wait()
        ctx.emit("val", epoch=st.epoch, step=st.step, **s.event)
        ctx.progress(epoch=st.epoch, step=st.step)  # meta.json's `best` follows the files
        new_best = improved(st.best, s)
        if new_best:
            st.best = {
                "metric": s.metric,
                "value": s.value,
                "epoch": st.epoch,
                "step": st.step,
                **s.best,
            }
        last = tr.last_state()  # every rank (it may gather); after st.best: last.pt has it
        if last is None:  # a DDP rank that writes nothing
            pass
        elif s.stop or st.epoch >= tr.cfg.train.epochs or (cadence.due() and room.ok(ckpt)):
            started = cadence.clock()
            if st.epoch >= tr.cfg.train.epochs and tr.cfg.speed.async_checkpoint != "off":
                writer.background = True  # the last write overlaps the test, not training
            if new_best:
                pending = {**tr.model_state(s.net), "best": st.best}
            files = [] if pending is None else [(ckpt / "best.pt", pending)]
            writer.write([*files, (ckpt / "last.pt", last)], _announce(ctx, st))
            pending = None
            cadence.paid(started)
        elif new_best:  # not written yet: kept in host memory for the next write
            # Every write has finished (writer.wait above), so `spare` is free to reuse.
            pending = checkpoint.snapshot({**tr.model_state(s.net), "best": st.best}, spare)
            spare = pending
        if s.stop:
            break
    return "completed"


def _announce(ctx: RunContext, st: State) -> Any:
    """What `fit` says once an epoch's checkpoints are on disk (from the writer's thread):
    `best` = this epoch is the best so far; `best_epoch` = the epoch best.pt now holds (an
    earlier one, written late, when the epochs between were not written)."""
    best = dict(st.best)
    event = {
        "which": "epoch",
        "step": st.step,
        "epoch": st.epoch,
        "best": best["epoch"] == st.epoch,
    }
    event["best_epoch"] = best["epoch"]

    def done() -> None:
        ctx.emit("checkpoint", **event)
        ctx.progress(force=True, epoch=event["epoch"], best=best)

    return done
