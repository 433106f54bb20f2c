"""The supervisor of a script run: `python -m tuneterm.script RUN_DIR [--resume]`.

It records its own pid and start time in meta.json, starts the script's command in a process
group of its own, and is the one writer of the run's events and meta.json until it exits:

- stdout and stderr go whole to `output.log` and, line by line, to `log` events and the metric
  parser (three threads: output, the API's metrics file, system samples);
- SIGTERM or SIGINT (`tuneterm stop`) is forwarded as `[script] stop_signal` to the script's
  process group, and `script/stop` is written for `tuneterm.should_stop()`: status `stopped`;
  a script still running `script.stop_grace_s` later is killed, with its whole tree;
- the run ends when the script exits, not when its output pipe closes: what it printed is read
  for a short while more, then whatever it left running is ended (SIGTERM, then SIGKILL);
- exit 0: `completed`; another exit code: `failed`, the last output lines as the reason;
- the script killed by a signal nobody sent through tuneterm (kill -9): the supervisor exits
  without a final status, so the run reads `crashed` and `tuneterm resume` continues it.

The script dies with the supervisor (`tree.die_with_parent`), and the supervisor adopts what the
script leaves behind (`tree.become_subreaper`); the script's process group and the processes
seen under it are recorded in meta.json (`group`), so readers can tell `orphaned` from `crashed`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from typing import Any

import psutil

from tuneterm.api import ENV_RESUME, ENV_RUN_DIR, ENV_STOP_SIGNAL, METRICS_FILE, STOP_FILE
from tuneterm.config import RunConfig, run_config
from tuneterm.config.scriptargs import fill
from tuneterm.monitor import gpu_memory_of, gpu_samples, process_sample, system_sample
from tuneterm.proc import SCRIPT_MARKER, ProcessIdentity
from tuneterm.script import metrics as mx
from tuneterm.script import tree
from tuneterm.script.apifile import api_record, last_offset
from tuneterm.script.output import LineSplitter
from tuneterm.slurm.commands import TIMEOUT_REASON
from tuneterm.store.events import EventWriter
from tuneterm.store.eventtypes import user_metrics, user_name
from tuneterm.store.files import FILE_MODE
from tuneterm.store.meta import RunMeta, ScriptGroup, begin_resume, load_meta, save_meta
from tuneterm.store.runs import RunStore
from tuneterm.store.text import printable

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
DRAIN_S = 2.0  # seconds without output after the script exited before the rest is ended
DRAIN_CAP = 30.0  # seconds a leftover that keeps printing may hold the run open
LEFTOVER_GRACE = 3.0  # seconds a process the script left running gets between TERM and KILL
POLL_CHILD = 0.2  # seconds between looks at a stop's grace period while the script runs


class Supervisor:
    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.dir = store.run_dir(run_id)
        self.meta_path = self.dir / "meta.json"
        self.meta: RunMeta = load_meta(self.meta_path)
        self.cfg: RunConfig = run_config(store, run_id)
        for stale in self.dir.glob(".meta.json.*.tmp"):
            stale.unlink(missing_ok=True)
        me = ProcessIdentity.current(run_id, SCRIPT_MARKER)
        self.meta.pid, self.meta.pid_start = me.pid, me.start_time
        self.meta.host = socket.gethostname()
        self.meta.epochs = 0  # a script's length is its own business (train.epochs is unused)
        self.writer = EventWriter(self.dir / "events", flush_interval=FLUSH_EVERY)
        self.book = mx.MetricBook.from_spec(
            self.meta.metrics, self.cfg.script.metric, self.meta.best
        )
        self.patterns = [re.compile(p) for p in self.cfg.script.patterns]
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()  # meta.json, the metric book, the step counter
        self._meta_saved = 0.0
        self._stop = threading.Event()
        self.warned = False  # the stop came as Slurm's warning before the time limit
        self._done = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self.reports = 0
        self._printed: tuple[int | None, dict[str, float]] = (None, {})
        self._known = set(self.book.seen)  # every metric name seen, in the spec or not
        self._spec_dirty = False  # names came that meta.json's spec does not have yet
        self._over_cap = False  # the warning that names are left out of the spec was given
        self._stop_at: float | None = None  # monotonic time of the first stop request
        self._killed = False  # the script outlived its stop grace period and was killed
        self._drained = threading.Event()  # stop reading output: the script is gone
        self._last_read = time.monotonic()  # when the reader last got bytes (or end-of-file)
        self.api = False  # the script has written to the API's metrics file
        self.offset = last_offset(self.dir / "events")
        self.api = self.offset > 0 or (self.dir / METRICS_FILE).exists()

    # -- meta.json and events ------------------------------------------------------------
    def _save(self, force: bool = False) -> None:
        """meta.json at most every META_EVERY seconds (a new metric name waits for the next
        write too: a script printing 10,000 names must not rewrite it 10,000 times)."""
        now = time.monotonic()
        if force or now - self._meta_saved >= META_EVERY:
            if self._spec_dirty:
                self.meta.metrics = self.book.spec()
                self._spec_dirty = False
            save_meta(self.meta_path, self.meta)
            self._meta_saved = now

    def set_status(self, status: str, error: str = "") -> None:
        with self._lock:
            extra: dict[str, Any] = {"error": error} if error else {}
            final = status in ("completed", "failed", "stopped")
            if final:  # how many events the queue holds (this one included): a reader's check
                extra["events"] = self.writer.seq + 1
                extra["events_written"] = self.writer.emitted + 1
            self.writer.emit("status", status=status, **extra)
            self.meta.status = status
            if error:
                self.meta.error = error
            if final:
                self.meta.events = self.writer.seq
                self.meta.ended = time.time()
                self.writer.flush()  # every event on disk before meta.json says it is over
            self._save(force=True)

    def record(self, rec: mx.Record, offset: int | None = None) -> None:
        """Turn one report into events, progress and, when a name is new, a new spec."""
        rec = dataclasses.replace(rec, metrics=user_metrics(rec.metrics))  # never `seq`, `t`...
        with self._lock:
            if rec.at_last_step:  # an eval (or more of a report) belongs to the step reached
                step = self.meta.step
            else:
                self.reports += 1
                step = rec.step if rec.step is not None else max(self.meta.step + 1, self.reports)
            epoch = rec.epoch if rec.epoch is not None else float(self.meta.epoch)
            where: dict[str, int] = {"off": offset} if offset is not None else {}
            for kind, fields in mx.events_of(rec, step, epoch):
                if kind == "train":
                    self.meta.last_loss = float(fields["loss"])
                self.writer.emit(kind, **fields, **where)
            self.meta.step, self.meta.epoch = step, int(epoch) if math.isfinite(epoch) else 0
            new = [k for k in rec.metrics if k not in self._known]
            if new:
                self._new_names(new)
                self._known.update(new)
            for _, fields in mx.events_of(rec, step, epoch):  # after the names: the chosen metric
                self.meta.best = self.book.offer(fields)
            self._save()

    def _new_names(self, names: list[str]) -> None:
        """Into the spec while it has room (`script.max_metrics` curves); past it, the names
        stay in the events only, and one warning says so."""
        curves = [k for k in names if k not in (*mx.TRAIN_LOSS, *mx.LR_KEYS)]
        room = max(0, self.cfg.script.max_metrics - len(self.book.seen))
        if self.book.see([k for k in names if k not in curves] + curves[:room]):
            self._spec_dirty = True
        if curves[room:] and not self._over_cap:
            self._over_cap = True
            msg = (
                f"more than script.max_metrics = {self.cfg.script.max_metrics} metric names: "
                f"{curves[room]!r} and any later new name are kept in the events but not "
                "drawn as curves"
            )
            self.writer.emit("log", level="warning", msg=msg)

    def declare(self, name: str, higher: bool, best: bool) -> None:
        name = user_name(name)  # the name its values are stored under
        with self._lock:
            self.book.declare(name, higher, best)
            if name not in self.book.seen:
                self.book.seen.append(name)
                self._known.add(name)
            self._spec_dirty = True
            self.meta.best = self.book.offer({})  # the declared best may now rank the run
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
        self.warned = self.warned or signum == signal.SIGUSR1
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        with contextlib.suppress(OSError):  # for should_stop(), whatever the script's handlers
            (self.dir / STOP_FILE).touch()
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.Signals[self.cfg.script.stop_signal])

    def run(self, resume: bool) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):  # USR1: Slurm's time limit
            signal.signal(sig, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not end it
        tree.become_subreaper()
        if resume:
            begin_resume(self.meta, time.time())
            # No step: where the script starts is its first report; the curves drop from there
            self.writer.emit("resume", resumes=self.meta.resumes)
            (self.dir / STOP_FILE).unlink(missing_ok=True)
        else:
            self.meta.started = time.time()
        self.meta.stop_outcome = ""
        self.set_status("starting")
        (self.dir / "checkpoints").mkdir(exist_ok=True)
        (self.dir / "script").mkdir(exist_ok=True)
        argv = self._argv(resume)
        cwd = self.cfg.script.cwd or None
        if self._stop.is_set():  # stopped while starting: the script never runs
            self.set_status("stopped", error=f"stopped before the script started; resume with "
                            f"`tuneterm resume {self.run_id}`")  # fmt: skip
            self.writer.close()
            return 0
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
                preexec_fn=tree.die_with_parent(),  # it dies with this process (kill -9)
            )
        except OSError as exc:
            os.close(log_fd)
            self.set_status("failed", error=f"cannot run {argv[0]}: {exc}")
            self.writer.close()
            return 1
        self._record_group()
        if self._stop.is_set():  # a stop that came while it was being started reaches it too
            self._on_term(signal.SIGTERM, None)
        with contextlib.suppress(OSError):  # after the fork: the script keeps its priority
            os.nice(NICENESS)
        self.writer.emit("log", level="info", msg=printable("$ " + " ".join(argv)))
        self.set_status("running")
        reader = threading.Thread(target=self._read_output, args=(log_fd,), daemon=True)
        tailer = threading.Thread(target=self._tail_metrics, daemon=True)
        sampler = threading.Thread(target=self._sample, daemon=True)
        for t in (reader, tailer, sampler):
            t.start()
        code = self._wait_script()
        self._last_read = time.monotonic()  # from its exit: DRAIN_S for the reader to wake up
        self._await_output(reader, DRAIN_CAP)  # its output; a leftover may hold the pipe
        self._end_leftovers()
        self._await_output(reader)
        self._drained.set()
        reader.join(DRAIN_S)
        self._done.set()
        tailer.join()
        self._read_metrics()  # what the script wrote just before it ended
        return self._finish(code)

    def _await_output(self, reader: threading.Thread, cap: float = math.inf) -> None:
        """Until the output ends, DRAIN_S pass with nothing read, or `cap` seconds: a backlog is
        read whole, and a leftover process that holds the pipe cannot keep the run open."""
        deadline = time.monotonic() + cap
        while reader.is_alive() and time.monotonic() - self._last_read < DRAIN_S:
            if time.monotonic() > deadline:
                return
            reader.join(0.1)

    def _record_group(self) -> None:
        assert self._child is not None
        with self._lock:
            try:
                start = psutil.Process(self._child.pid).create_time()
            except psutil.Error:  # it has already ended: nothing of it can be left
                start = time.time()
            self.meta.group = ScriptGroup(pgid=self._child.pid, start=round(start, 3))
            self._save(force=True)

    def _wait_script(self) -> int:
        """The script's exit code. Once a stop was asked, a script still running after
        `script.stop_grace_s` is killed, with its process group and every process under it."""
        assert self._child is not None
        while True:
            try:
                return self._child.wait(timeout=POLL_CHILD)
            except subprocess.TimeoutExpired:
                pass
            at = self._stop_at
            if at is None or self._killed:
                continue
            if time.monotonic() - at >= self.cfg.script.stop_grace_s:
                self._killed = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._child.pid, signal.SIGKILL)  # not reaped: still our group
                tree.kill_now(tree.descendants())

    def _end_leftovers(self) -> None:
        """The script has exited; what it started and left running (adopted by this process,
        the subreaper) is ended now, and the log says what it was."""
        left = tree.descendants()
        if not left:
            return
        ended = tree.end_all(left, LEFTOVER_GRACE)
        parts = []
        if ended.termed:
            parts.append("ended by SIGTERM: " + ", ".join(ended.termed))
        if ended.killed:
            parts.append(f"killed after {LEFTOVER_GRACE:.0f} s: " + ", ".join(ended.killed))
        if ended.alive:
            parts.append("still running: " + ", ".join(ended.alive))
        msg = f"the script exited leaving {len(left)} process(es) running; " + "; ".join(parts)
        self.writer.emit("log", level="warning", msg=printable(msg))

    def _finish(self, code: int) -> int:
        if self._stop.is_set():
            sc = self.cfg.script
            how = (
                f"killed: still running {sc.stop_grace_s:g} s after {sc.stop_signal} "
                "(script.stop_grace_s)"
                if self._killed
                else TIMEOUT_REASON
                if self.warned
                else f"stopped ({sc.stop_signal})"
            )
            self.meta.stop_outcome = "killed" if self._killed else "clean"
            self.set_status("stopped", error=f"{how}; resume with `tuneterm resume {self.run_id}`")
        elif code == 0:
            self.set_status("completed")
        elif code < 0 and -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS):
            # Killed from outside tuneterm (kill -9, the OOM killer): no final status, so the
            # run reads `crashed` once this process is gone, and `resume` continues it.
            with self._lock:
                self.meta.error = f"script killed by {signal.Signals(-code).name}"
                self.writer.emit("error", message=self.meta.error, traceback="")
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
            # Until end-of-file, or until the script is gone and what it left is ended: a
            # process it left holding the pipe must not keep the run open.
            while True:
                if not select.select([pipe], [], [], TAIL_EVERY)[0]:
                    if self._drained.is_set():  # nothing left to read, and the rest is ended
                        break
                    continue
                chunk = os.read(pipe, CHUNK)
                self._last_read = time.monotonic()
                if not chunk:
                    break
                os.write(log_fd, chunk)  # the raw log keeps every byte
                for line in lines.feed(chunk):
                    self._line(line)
                    self._last_read = time.monotonic()  # busy reading a backlog is no idle pipe
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
        if rec is None:
            return
        # The API writes its file before the script prints on, so a look at the file now
        # cannot miss it, however late the tailer's next poll (the start-up race).
        if (self.dir / METRICS_FILE).exists():
            self.api = True
            return
        if rec.step is None or (rec.step, rec.metrics) != self._printed:
            self._printed = (rec.step, rec.metrics)  # a bar printed twice is one report
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
        rec = api_record(item)
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
                tree.reap(self._child.pid if self._child else 0)  # adopted ones that ended
                below = tree.descendants()
                gpus = gpu_samples(indices)
                if gpus:
                    sample["gpus"] = [g.to_dict() for g in gpus]
                    sample["gpu_mem_tree"] = gpu_memory_of({p.pid for p in below})
                with self._lock:
                    if not self._done.is_set():
                        # Who to look for if this process dies: readers check these by pid
                        # and start time (`orphaned`), `stop --force` ends them.
                        self.meta.group.procs = tree.identities(below)
                        self.writer.emit("sys", **sample)
                        self._save()
            except psutil.Error:
                continue
