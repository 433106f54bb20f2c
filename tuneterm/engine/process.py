"""The engine process: `python -m tuneterm.engine RUN_DIR [--resume]`.

It records its own pid and start time first (before importing torch), then owns the run's
meta.json, event queue and checkpoints until it exits. SIGTERM asks for a graceful stop:
the loop finishes its step, saves `last.pt`, and the status becomes `stopped`.

This module is the OS process only: its pid record, signals, the system sampler, meta.json and
the event writer. What it runs is the recipe (engine/recipe.py: resume, fit, test, final
metrics), the same for every kind of run.

Under torchrun (`train.gpus > 1`, see tuneterm/torchrun.py and engine/ddp.py) one engine runs
per rank. Rank 0 records the torchrun agent, its parent, as the run's process (the one the
launcher started and verifies); every other rank trains with a `Silent` sink in place of the
event writer and saves no meta.json: rank 0 is the one writer of the run's files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

import psutil

# tasks registers the kinds (their config tables and checks) before a config is read
from tuneterm import tasks  # noqa: F401
from tuneterm.config import run_config
from tuneterm.engine.ddp import Rank, die_with_parent, local_gpus
from tuneterm.monitor import gpu_samples, process_sample, system_sample
from tuneterm.proc import ENGINE_MARKER, ProcessIdentity
from tuneterm.slurm.commands import TIMEOUT_REASON, WARNING, requeue_own_job
from tuneterm.store.events import EventWriter
from tuneterm.store.files import atomic_write_json
from tuneterm.store.meta import ACTIVE, RunMeta, begin_resume, load_meta
from tuneterm.store.runs import RunStore, runner_args

SAMPLE_EVERY = 2.0  # seconds between system samples
META_EVERY = 1.0  # the sampler thread writes the training's progress to meta.json this often


class Silent:
    """The event sink of a DDP rank other than 0: it trains in step with rank 0 and writes
    none of the run's files (rank 0 is their one writer)."""

    seq = emitted = 0

    def emit(self, kind: str, /, **fields: Any) -> None:
        pass

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


class EngineProcess:
    """The engine's OS process; implements the recipe's RunContext over the run folder."""

    def __init__(self, store: RunStore, run_id: str, rank: Rank | None = None) -> None:
        self.store, self.run_id = store, run_id
        self.rank = rank or Rank()
        self.writes = self.rank.main  # rank 0 owns meta.json and the event queue
        self.gpu_indices: list[int] | None = None  # the GPUs the sampler reports; None = all
        self.dir = store.run_dir(run_id)
        self.ckpt_dir = self.dir / "checkpoints"
        self.meta_path = self.dir / "meta.json"
        self.meta: RunMeta = load_meta(self.meta_path)  # on other ranks a copy, never saved
        if self.writes:
            # This process now owns meta.json: clear temp files a killed predecessor left.
            for stale in self.dir.glob(".meta.json.*.tmp"):
                stale.unlink(missing_ok=True)
        self._stop = threading.Event()
        self._stop_signal = ""
        self._done = threading.Event()
        self._meta_lock = threading.Lock()  # guards self.meta
        self._save_lock = threading.Lock()  # one meta.json write at a time
        self._final_lock = threading.Lock()  # no sampler event after the final status
        self._meta_changes = self._meta_written = 0  # meta.json is stale while they differ
        self._sampler_thread: threading.Thread | None = None
        me = _agent(run_id) if self.rank.distributed else None
        me = me or ProcessIdentity.current(run_id)
        self.meta.pid, self.meta.pid_start = me.pid, me.start_time
        self._root_pid = me.pid  # sampled with its children: every local rank and data worker
        self.meta.host = socket.gethostname()
        self.writer: EventWriter | Silent = (
            EventWriter(self.dir / "events") if self.writes else Silent()
        )

    # -- RunContext ------------------------------------------------------------------------
    def emit(self, kind: str, /, **fields: Any) -> None:
        self.writer.emit(kind, **fields)

    def log(self, msg: str, level: str = "info") -> None:
        if not self.writes:  # another rank: only what rank 0 cannot say for it
            if level != "info":
                print(f"[rank {self.rank.rank}] [{level}] {msg}", flush=True)
            return
        print(f"[{level}] {msg}", flush=True)
        self.emit("log", level=level, msg=msg)

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def progress(self, force: bool = False, **fields: Any) -> None:
        """Record `fields` in meta.json: now if `force`, else within META_EVERY seconds, written
        by the sampler thread (each write fsyncs: not on the training thread)."""
        with self._meta_lock:
            for key, value in fields.items():
                setattr(self.meta, key, value)
            self._meta_changes += 1
        if force or self._sampler_thread is None:
            self._save_meta()

    def _save_meta(self, heartbeat: bool = False) -> None:
        """Write meta.json if it changed since the last write (or, as a `heartbeat`, to renew
        its `updated` time). Writes are serialised and each takes the latest meta, so an
        older state never lands after a newer one."""
        if not self.writes:
            return
        with self._save_lock:
            with self._meta_lock:
                if self._meta_changes == self._meta_written and not heartbeat:
                    return
                changes = self._meta_changes
                self.meta.updated = time.time()
                data = self.meta.model_dump()
            atomic_write_json(self.meta_path, data)
            self._meta_written = changes

    def set_status(self, status: str, **fields: Any) -> None:
        if status == "stopped" and self.time_limit_warned:
            fields.setdefault("error", f"{TIMEOUT_REASON}; {self.stopped_message(self.meta.step)}")
        extra = {k: v for k, v in fields.items() if k == "error"}
        if status not in ACTIVE:
            with self._final_lock:
                self._done.set()
                # The final status reports how many events the run's queue holds (this one
                # included) and how many this process wrote, so readers can check they lost none.
                fields["events"] = extra["events"] = self.writer.seq + 1
                extra["events_written"] = self.writer.emitted + 1
                self.emit("status", status=status, **extra)
            # Readers stop polling once meta.json says the run is over: every event must be
            # on disk before that is visible.
            self.writer.flush()
        else:
            self.emit("status", status=status, **extra)
        self.progress(force=True, status=status, **fields)

    # -- signals and sampling -------------------------------------------------------------------
    def _on_term(self, signum: int, frame: object) -> None:
        # Only set flags here: a signal handler runs on the main thread between bytecodes, and
        # emit() takes the event writer's lock, which the interrupted code may be holding.
        self._stop_signal = self._stop_signal or signal.Signals(signum).name
        self._stop.set()

    @property
    def time_limit_warned(self) -> bool:
        return self._stop_signal == WARNING

    def use_gpus(self, device: Any) -> None:
        """A distributed run on CUDA samples the GPUs of this node's ranks."""
        if self.rank.distributed and device.type == "cuda":
            self.gpu_indices = local_gpus()

    def _sampler(self) -> None:
        try:
            me = psutil.Process(self._root_pid)
        except psutil.Error:
            me = psutil.Process(os.getpid())
        process_sample(me)  # prime cpu_percent
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        indices = [int(i) for i in visible.split(",") if i.strip().isdigit()] if visible else None
        due = time.monotonic() + SAMPLE_EVERY
        while not self._done.wait(META_EVERY):
            with contextlib.suppress(OSError):  # a full disk: the next forced write says so
                self._save_meta()  # the training's progress since the last tick
            if time.monotonic() < due:
                continue
            due = max(due + SAMPLE_EVERY, time.monotonic())
            try:
                sample: dict[str, Any] = {**process_sample(me), **system_sample()}
                gpus = gpu_samples(self.gpu_indices if self.gpu_indices is not None else indices)
                if gpus:
                    sample["gpus"] = [g.to_dict() for g in gpus]
                with self._final_lock:
                    if not self._done.is_set():
                        self.emit("sys", **sample)
                        # A heartbeat in meta.json: readers on other hosts (a cluster's login
                        # node) cannot check the pid, so they go by its `updated` time.
                        self._save_meta(heartbeat=True)
            except psutil.Error:
                continue

    # -- the run ----------------------------------------------------------------------------
    def run(self, resume: bool) -> int:
        # SIGUSR1: Slurm's warning before the job's time limit (sbatch --signal, runs/slurmjobs.py)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not end the run
        if resume:
            begin_resume(self.meta, time.time())
        else:
            self.meta.started = time.time()
        self.set_status("starting")
        if self.writes:
            self._sampler_thread = threading.Thread(
                target=self._sampler, name="sampler", daemon=True
            )
            self._sampler_thread.start()
        code = 1
        try:
            code = self._train(resume)
        except BaseException as exc:  # the run must end with a status, whatever happened
            self._fail(exc)
        finally:
            self._done.set()
            try:
                self.writer.close()
            finally:
                self.progress(force=True, ended=time.time())
        return code

    def _train(self, resume: bool) -> int:
        cfg = run_config(self.store, self.run_id)
        # CUDA's context, cuBLAS and cuDNN start in a thread while torch's Python side imports
        # and the data loads (engine/warmup.py); nothing without CUDA.
        from tuneterm.engine import warmup

        warmup.start(cfg.train.device)
        from tuneterm.engine import recipe, trainer  # noqa: F401  # torch and the loop: imports

        # The first mark of the run's timing (runs/timing.py): when the process started, by
        # the OS's clock, and when its imports were done (this event's own time).
        self.emit("phase", name="imports", process_start=self.meta.pid_start)
        return recipe.run(self, cfg, resume)

    def stopped_message(self, step: int) -> str:
        return (
            f"{self._stop_signal or 'stop'} received: checkpoint saved at step "
            f"{step}; resume with `tuneterm resume {self.run_id}`"
        )

    def _fail(self, exc: BaseException) -> None:
        from tuneterm.engine.errors import describe

        message = describe(exc, self)
        tb = "".join(traceback.format_exception(exc))
        if not self.writes:
            print(f"[rank {self.rank.rank}] failed:", file=sys.stderr)
        print(tb, file=sys.stderr, flush=True)
        self.emit("error", message=message, traceback=tb)
        self.set_status("failed", error=message)


def _agent(run_id: str) -> ProcessIdentity | None:
    """The torchrun agent that started this rank: the run's own process, if it is ours."""
    try:
        parent = psutil.Process(os.getppid())
        cmdline = " ".join(parent.cmdline())
        if "torch.distributed.run" in cmdline and ENGINE_MARKER in cmdline and run_id in cmdline:
            return ProcessIdentity(parent.pid, parent.create_time(), run_id)
    except psutil.Error:
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    store, run_id, resume = runner_args("python -m tuneterm.engine", argv)
    rank = Rank.from_env()
    if rank.distributed:
        die_with_parent()
    engine = EngineProcess(store, run_id, rank)
    code = engine.run(resume)
    if engine.time_limit_warned and engine.writes and engine.meta.status == "stopped":
        requeue_own_job()  # with slurm.requeue: the job runs again and resumes from last.pt
    return code
