"""The recipe every kind of run follows inside the engine process, top to bottom: set up the
device (and DDP), build the kind's task object, resume from `last.pt`, record the start, train
(`Trainer.fit`), test the best checkpoint, record the final metrics and the status.

The process around it (engine/process.py) is any `Run`: rank 0 writes the run's files, other
DDP ranks write nothing, and tests may pass their own.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tuneterm import tasks
from tuneterm.config import RunConfig
from tuneterm.engine.ddp import Rank

if TYPE_CHECKING:
    import torch

    from tuneterm.engine.kinds import Data
    from tuneterm.engine.trainer import Trainer
    from tuneterm.store.meta import RunMeta
    from tuneterm.store.runs import RunStore


class Run(Protocol):
    """What the recipe needs from the process it runs in (engine/process.py)."""

    rank: Rank
    store: RunStore
    meta: RunMeta
    ckpt_dir: Path

    def emit(self, kind: str, /, **fields: Any) -> None: ...
    def log(self, msg: str, level: str = "info") -> None: ...
    def progress(self, force: bool = False, **fields: Any) -> None: ...
    def set_status(self, status: str, **fields: Any) -> None: ...
    def stop_requested(self) -> bool: ...
    def stopped_message(self, step: int) -> str: ...
    def use_gpus(self, device: Any) -> None: ...


def run(engine: Run, cfg: RunConfig, resume: bool) -> int:
    """The engine's body for any kind (found through `tuneterm.tasks`); the exit code."""
    from tuneterm.engine.ddp import Dist
    from tuneterm.engine.device import pick_device

    device = pick_device(cfg.train.device, engine.rank)
    dist = Dist(engine.rank, device, cfg.dist.backend)  # one process: nothing to set up
    code = _run(engine, cfg, resume, dist)
    dist.close()  # not on an exception: a dead peer can make the teardown hang
    return code


def _run(engine: Run, cfg: RunConfig, resume: bool, dist: Any) -> int:
    import torch

    from tuneterm.engine import checkpoint, faults, kinds
    from tuneterm.engine.device import pick_precision
    from tuneterm.engine.kinds import Setup
    from tuneterm.engine.trainer import Trainer

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    setup = Setup(
        dist.device,
        dist,
        pick_precision(cfg.train.precision, dist.device),
        engine.store,
        phase=lambda name: engine.emit("phase", name=name),
    )
    task = kinds.load(cfg.run.task).build(cfg, setup)
    record_data(engine, cfg.data.dataset, task.data)
    if not resume:  # what the run starts from, before techniques add adapters (a soup's check)
        skip = task.head_name
        engine.progress(init_hash=checkpoint.state_hash(task.model.state_dict(), skip))
    faults.install(task.model)  # test hook; does nothing unless TUNETERM_FAULT is set
    trainer = Trainer(cfg, task, engine, dist)
    engine.emit("phase", name="model")
    if dist.on:  # the same init on every rank (DDP broadcast rank 0's); then each its own draws
        torch.manual_seed(cfg.train.seed + dist.rank.rank)
    engine.use_gpus(trainer.device)
    ranks = dist.gather(
        {
            "rank": dist.rank.rank,
            "host": socket.gethostname(),
            "device": device_name(trainer.device),
            "pid": os.getpid(),
        }
    )
    ddp = f", rank 0 of {dist.rank.world} (DDP, {cfg.dist.backend} backend)" if dist.on else ""
    return drive(
        engine,
        trainer,
        resume,
        stop_now=dist.any,
        ranks=ranks,
        ddp=ddp,
        data=task.data.counts,
        classes=task.data.classes,
    )


def drive(
    engine: Run,
    trainer: Trainer,
    resume: bool,
    *,
    stop_now: Any = bool,
    ranks: list[dict[str, Any]] | None = None,
    ddp: str = "",
    **start_fields: Any,
) -> int:
    """Once the trainer is built: resume from `last.pt`, record the start, train, test the best
    checkpoint, and record the final metrics (named by the kind's spec) and status. `stop_now`
    turns this process's stop request into the decision every process of the run agrees on."""
    last = engine.ckpt_dir / "last.pt"
    st = trainer.state
    if resume:
        if last.is_file():
            trainer.restore(last)
            st = trainer.state
        engine.emit(
            "resume", step=st.step, epoch=st.epoch, batch=st.batch, from_checkpoint=last.is_file()
        )
        engine.log(
            f"resumed at step {st.step} (epoch {st.epoch + 1}, batch {st.batch})"
            if last.is_file()
            else "no checkpoint yet: starting from the beginning"
        )
    p, started = trainer.params, trainer.task.started
    engine.log(
        f"model {started.label}{ddp}: {p['trainable']:,} of {p['total']:,} parameters "
        f"trainable ({p['trainable_pct']:.1f}%{started.note}) on {trainer.device}"
    )
    record_start(
        engine,
        trainer.device,
        extra_versions=started.versions,
        ranks=ranks,
        techniques=trainer.tech.summary(),
        params=p,
        total_steps=trainer.total_steps,
        epochs=trainer.cfg.train.epochs,
        step=st.step,
        epoch=st.epoch,
        # the run's metric spec, so any reader renders it from data alone (a run created by an
        # older tuneterm gets it here, when it is resumed)
        metrics=tasks.run_metric_spec(trainer.cfg),
        **start_fields,
    )
    start_event(engine, trainer)
    if stop_now(engine.stop_requested()):
        engine.set_status("stopped")
        return 0
    engine.set_status("running")
    outcome = trainer.fit(overlap_test=True)
    if outcome == "stopped":
        engine.log(engine.stopped_message(trainer.state.step))
    try:
        if outcome == "completed":
            result = trainer.test()  # while the last checkpoint may still be written
            engine.emit("test", **result)
            engine.meta.final = trainer.final(result)
            engine.meta.techniques = trainer.tech.summary()
    except BaseException:
        trainer.settle(quiet=True)  # the test's error is the one to report
        raise
    trainer.settle()  # every file on disk before the final status
    engine.set_status(outcome)
    return 0


def start_event(engine: Run, trainer: Trainer) -> None:
    """The "start" event: how this process trains (the optimizer's implementation, from
    engine/optim.py's one choice) and what CUDA's warm-up did (engine/warmup.py)."""
    from tuneterm.engine import warmup

    w = warmup.current()
    fields: dict[str, Any] = {}
    if w is not None and w.thread is not None:
        w.wait(0)  # never blocks: what it has done by now
        fields.update(warmup=list(w.done), **({"warmup_error": w.error} if w.error else {}))
    engine.emit(
        "start",
        device=str(trainer.device),
        optimizer=trainer.cfg.train.optimizer,
        optimizer_impl=trainer.opt_impl,
        **fields,
    )


def record_data(engine: Run, dataset: str, data: Data) -> None:
    counts = data.counts
    engine.log(
        f"data {dataset}: {len(data.classes)} classes, "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    engine.emit("data", **counts)


def record_start(
    engine: Run,
    device: torch.device,
    extra_versions: dict[str, str] | None = None,
    ranks: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> None:
    """Record versions, the device (with its GPU name) and the run's shape in meta.json;
    for a distributed run, every rank's device and host (`ranks`, from ddp gather)."""
    import torch
    import torchvision

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda or "",
        **(extra_versions or {}),
    }
    name = device_name(device)
    if ranks and len(ranks) > 1:  # e.g. "8 x cuda (NVIDIA H100)"; each rank in `devices`
        gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        name = f"{len(ranks)} x {device.type}{gpu}"
        fields.update(world_size=len(ranks), devices=ranks)
    engine.progress(force=True, versions=versions, device=name, **fields)


def device_name(device: torch.device) -> str:
    name = str(device)
    if device.type == "cuda":
        import torch

        name += f" ({torch.cuda.get_device_name(device)})"
    return name
