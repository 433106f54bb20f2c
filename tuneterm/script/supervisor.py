"""The supervisor of a script run: `python -m tuneterm.script RUN_DIR [--resume]`.

It records its own pid and start time in meta.json, starts the script's command in a process
group of its own, and is the one writer of the run's events and meta.json until it exits:

- stdout and stderr go whole to `output.log` and, line by line, to `log` events and the metric
  parser (three threads: output, the API's metrics file, system samples);
- SIGTERM or SIGINT (`tuneterm stop`) is forwarded as `[script] stop_signal` to the script's
  process group, and `script/stop` is written for `tuneterm.should_stop()`: status `stopped`;
- exit 0: `completed`; another exit code: `failed`, the last output lines as the reason;
- the script killed by a signal nobody sent through tuneterm (kill -9): the supervisor exits
  without a final status, so the run reads `crashed` and `tuneterm resume` continues it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tuneterm.api import ENV_RESUME, ENV_RUN_DIR, ENV_STOP_SIGNAL, METRICS_FILE, STOP_FILE
from tuneterm.config import RunConfig
from tuneterm.config.scriptargs import fill
from tuneterm.monitor import gpu_samples, process_sample, system_sample
from tuneterm.proc import SCRIPT_MARKER, ProcessIdentity
from tuneterm.script import metrics as mx
from tuneterm.script.output import LineSplitter
from tuneterm.store.events import EventWriter, list_segments, segment_path
from tuneterm.store.eventtypes import user_metrics, user_name
from tuneterm.store.files import FILE_MODE
from tuneterm.store.meta import RunMeta, begin_resume, load_meta, save_meta
from tuneterm.store.runs import RunStore

OUTPUT_LOG = "output.log"
SAMPLE_EVERY = 2.0
TAIL_EVERY = 0.1  # seconds between reads of the API's metrics file
# Seconds between event flushes: each rewrites the open segment, so a script that logs every
# millisecond would otherwise pay for ten rewrites a second (FACTS.md: batches every 250 ms).
FLUSH_EVERY = 0.25
NICENESS = 5  # the supervisor yields the CPU to the script it watches
META_EVERY = 1.0
TAIL_LINES = 12  # output lines kept for a failure's reason
CHUNK = 65536


class Supervisor:
    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.dir = store.run_dir(run_id)
        self.meta_path = self.dir / "meta.json"
        self.meta: RunMeta = load_meta(self.meta_path)
        self.cfg: RunConfig = store.config(run_id)
        for stale in self.dir.glob(".meta.json.*.tmp"):
            stale.unlink(missing_ok=True)
        me = ProcessIdentity.current(run_id, SCRIPT_MARKER)
        self.meta.pid, self.meta.pid_start = me.pid, me.start_time
        self.meta.host = socket.gethostname()
        self.meta.epochs = 0  # a script's length is its own business (train.epochs is unused)
        self.writer = EventWriter(self.dir / "events", flush_interval=FLUSH_EVERY)
        self.book = mx.MetricBook.from_spec(self.meta.metrics)
        self.patterns = [re.compile(p) for p in self.cfg.script.patterns]
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()  # meta.json, the metric book, the step counter
        self._meta_saved = 0.0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self.reports = 0
        self.api = False  # the script has written to the API's metrics file
        self.offset = _last_offset(self.dir / "events")
        self.api = self.offset > 0 or (self.dir / METRICS_FILE).exists()

    # -- meta.json and events ------------------------------------------------------------
    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._meta_saved >= META_EVERY:
            save_meta(self.meta_path, self.meta)
            self._meta_saved = now

    def set_status(self, status: str, error: str = "") -> None:
        with self._lock:
            extra = {"error": error} if error else {}
            self.writer.emit("status", status=status, **extra)
            self.meta.status = status
            if error:
                self.meta.error = error
            if status in ("completed", "failed", "stopped"):
                self.meta.events = self.writer.seq
                self.meta.ended = time.time()
                self.writer.flush()  # every event on disk before meta.json says it is over
            self._save(force=True)

    def record(self, rec: mx.Record, offset: int | None = None) -> None:
        """Turn one report into events, progress and, when a name is new, a new spec."""
        rec = dataclasses.replace(rec, metrics=user_metrics(rec.metrics))  # never `seq`, `t`...
        with self._lock:
            self.reports += 1
            step = rec.step if rec.step is not None else max(self.meta.step + 1, self.reports)
            epoch = rec.epoch if rec.epoch is not None else float(self.meta.epoch)
            where: dict[str, int] = {"off": offset} if offset is not None else {}
            for kind, fields in mx.events_of(rec, step, epoch):
                if kind == "train":
                    self.meta.last_loss = float(fields["loss"])
                else:
                    self._track_best(fields)
                self.writer.emit(kind, **fields, **where)
            self.meta.step, self.meta.epoch = step, int(epoch)
            changed = self.book.see(
                [k for k in rec.metrics if k not in (*mx.TRAIN_LOSS, *mx.LR_KEYS)]
            )
            if changed:
                self.meta.metrics = self.book.spec()
            self._save(force=changed)

    def _track_best(self, fields: dict[str, Any]) -> None:
        name = self.book.best() or next(iter(k for k in fields if k not in ("step", "epoch")), "")
        value = fields.get(name)
        if not isinstance(value, float) or value != value:
            return
        old = self.meta.best.get("value") if self.meta.best.get("metric") == name else None
        if old is None or self.book.metric(name).better(value, float(old)):
            self.meta.best = {**fields, "metric": name, "value": value}

    def declare(self, name: str, higher: bool, best: bool) -> None:
        name = user_name(name)  # the name its values are stored under
        with self._lock:
            self.book.declare(name, higher, best)
            if name not in self.book.seen:
                self.book.seen.append(name)
            self.meta.metrics = self.book.spec()
            self._save(force=True)

    # -- the script --------------------------------------------------------------------------
    def _argv(self, resume: bool) -> list[str]:
        sc = self.cfg.script
        argv = list(sc.command)
        if resume and sc.resume_args:
            argv += fill(
                sc.resume_args,
                {"checkpoint_dir": str(self.dir / "checkpoints"), "run_dir": str(self.dir)},
            )
        return argv

    def _env(self, resume: bool) -> dict[str, str]:
        sc = self.cfg.script
        env = dict(os.environ, **sc.env)
        env.update({ENV_RUN_DIR: str(self.dir), ENV_STOP_SIGNAL: sc.stop_signal})
        env["PYTHONUNBUFFERED"] = "1"
        env[ENV_RESUME] = "1" if resume else "0"
        if self.meta.gpus and "CUDA_VISIBLE_DEVICES" not in sc.env:
            env["CUDA_VISIBLE_DEVICES"] = "" if self.meta.gpus == "cpu" else self.meta.gpus
        return env

    def _on_term(self, signum: int, frame: object) -> None:
        # Flags, a file and a signal only: no locks in a handler.
        self._stop.set()
        with contextlib.suppress(OSError):  # for should_stop(), whatever the script's handlers
            (self.dir / STOP_FILE).touch()
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.Signals[self.cfg.script.stop_signal])

    def run(self, resume: bool) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not end it
        if resume:
            begin_resume(self.meta, time.time())
            (self.dir / STOP_FILE).unlink(missing_ok=True)
        else:
            self.meta.started = time.time()
        self.set_status("starting")
        (self.dir / "checkpoints").mkdir(exist_ok=True)
        (self.dir / "script").mkdir(exist_ok=True)
        argv = self._argv(resume)
        cwd = self.cfg.script.cwd or None
        log_fd = os.open(self.dir / OUTPUT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            self._child = subprocess.Popen(
                argv,
                cwd=cwd,
                env=self._env(resume),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop reaches its workers too
                close_fds=True,
            )
        except OSError as exc:
            os.close(log_fd)
            self.set_status("failed", error=f"cannot run {argv[0]}: {exc}")
            self.writer.close()
            return 1
        with contextlib.suppress(OSError):  # after the fork: the script keeps its priority
            os.nice(NICENESS)
        self.writer.emit("log", level="info", msg="$ " + " ".join(argv))
        self.set_status("running")
        reader = threading.Thread(target=self._read_output, args=(log_fd,), daemon=True)
        tailer = threading.Thread(target=self._tail_metrics, daemon=True)
        sampler = threading.Thread(target=self._sample, daemon=True)
        for t in (reader, tailer, sampler):
            t.start()
        code = self._child.wait()
        reader.join()
        self._done.set()
        tailer.join()
        self._read_metrics()  # what the script wrote just before it ended
        return self._finish(code)

    def _finish(self, code: int) -> int:
        if self._stop.is_set():
            self.set_status("stopped", error=f"stopped ({self.cfg.script.stop_signal}); "
                            f"resume with `tuneterm resume {self.run_id}`")  # fmt: skip
        elif code == 0:
            self.set_status("completed")
        elif code < 0 and -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS):
            # Killed from outside tuneterm (kill -9, the OOM killer): no final status, so the
            # run reads `crashed` once this process is gone, and `resume` continues it.
            with self._lock:
                self.meta.error = f"script killed by {signal.Signals(-code).name}"
                self.writer.emit("log", level="error", msg=self.meta.error)
                self.writer.flush()
                self._save(force=True)
            self.writer.close()
            return 1
        else:
            what = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            last = "\n".join(self.tail)
            self.set_status("failed", error=f"script ended with {what}: {last}".strip())
        self.writer.close()
        return 0

    def _read_output(self, log_fd: int) -> None:
        assert self._child is not None and self._child.stdout is not None
        pipe = self._child.stdout.fileno()
        lines = LineSplitter()
        try:
            while chunk := os.read(pipe, CHUNK):
                os.write(log_fd, chunk)  # the raw log keeps every byte
                for line in lines.feed(chunk):
                    self._line(line)
            for line in lines.close():
                self._line(line)
        finally:
            os.close(log_fd)

    def _line(self, line: str) -> None:
        if not line:
            return
        self.tail.append(line)
        self.writer.emit("log", level="out", msg=line)
        if self.api:  # the script reports through the API: its printed lines would repeat it
            return
        rec = mx.parse_line(line, self.patterns)
        if rec is not None:
            self.record(rec)

    def _tail_metrics(self) -> None:
        while not self._done.wait(TAIL_EVERY):
            self._read_metrics()

    def _read_metrics(self) -> None:
        """New whole lines of the API's metrics file, from the byte cursor on."""
        path = self.dir / METRICS_FILE
        try:
            with open(path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        pos = self.offset
        for raw in data[: end + 1].splitlines(keepends=True):
            pos += len(raw)
            self._api_line(raw, pos)
        self.offset = pos

    def _api_line(self, raw: bytes, offset: int) -> None:
        try:
            item = json.loads(raw)
        except ValueError:
            return  # not ours to fix; the file keeps it
        if not isinstance(item, dict):
            return
        self.api = True
        if "define" in item:
            self.declare(
                str(item["define"]), bool(item.get("higher", True)), bool(item.get("best"))
            )
            return
        rec = mx.from_mapping(item.get("m") or {}, item.get("step"), item.get("epoch"))
        if rec is not None:
            self.record(rec, offset)

    def _sample(self) -> None:
        try:
            me = psutil.Process(os.getpid())
            process_sample(me)  # prime cpu_percent
        except psutil.Error:
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES") or self.meta.gpus
        indices = [int(i) for i in visible.split(",") if i.strip().isdigit()] if visible else None
        while not self._done.wait(SAMPLE_EVERY):
            try:
                sample: dict[str, Any] = {**process_sample(me), **system_sample()}
                tree = {p.pid for p in me.children(recursive=True)}
                gpus = gpu_samples(indices)
                if gpus:
                    sample["gpus"] = [g.to_dict() for g in gpus]
                    sample["gpu_mem_tree"] = _gpu_mem_of(tree)
                with self._lock:
                    if not self._done.is_set():
                        self.writer.emit("sys", **sample)
                        self._save()
            except psutil.Error:
                continue


def _gpu_mem_of(pids: set[int]) -> int:
    """Bytes of GPU memory the script's processes hold (NVML); 0 without NVML."""
    try:
        import pynvml

        total = 0
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
                if p.pid in pids and p.usedGpuMemory:
                    total += int(p.usedGpuMemory)
        return total
    except Exception:  # no NVML, no driver: the pane says so from the GPU samples
        return 0


def _last_offset(events_dir: Path) -> int:
    """Where the API's metrics file was read up to: the `off` of the newest event that has
    one. Events are flushed after the cursor moves, so a kill -9 re-reads, never skips."""
    for index in reversed(list_segments(events_dir)):
        try:
            data = json.loads(segment_path(events_dir, index).read_bytes())
        except (OSError, ValueError):
            continue
        docs = data.get("events", {}) if isinstance(data, dict) else {}
        for key in sorted(docs, key=int, reverse=True):
            off = docs[key].get("off")
            if isinstance(off, int):
                return off
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuneterm.script")
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    sup = Supervisor(RunStore(run_dir.parent), run_dir.name)
    try:
        return sup.run(args.resume)
    except BaseException as exc:  # the run must end with a status, whatever happened
        sup.set_status("failed", error=f"supervisor error: {exc!r}")
        sup.writer.close()
        print(repr(exc), file=sys.stderr)
        return 1
