"""A stand-in engine for fault tests: the real `EngineProcess` with a torch-free training loop.

Everything the store, the launcher and the readers see is the real thing: the same process
class records its pid + start time in meta.json, holds the event queue's writer lock, flushes
events every 100 ms, handles SIGTERM, writes the final status (with its event counts) and runs
under the launcher's handshake. Only `_train` differs: instead of importing torch (~5 s here)
it steps a counter, emits the same event kinds as the real loop (train, val, checkpoint,
resume, test), and checkpoints `checkpoints/last.json` atomically at each epoch end and on
stop, padded to `PAD` bytes so a kill often lands mid-write.

Run it as `python tests/helpers/fault_engine.py tuneterm.engine RUN_DIR [--resume]`: the
`tuneterm.engine` argument labels the process as an engine for the pid + start time + command
line identity check, exactly as the real engine's command line does. Tests point
`tuneterm.runs.launcher.ENGINE_CMD` at it, so `launcher.start/resume/stop` drive it unchanged.

Env: `STANDIN_STEPS` (steps per epoch, default 20), `STANDIN_STEP_S` (seconds per step,
default 0.01).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # the repository root

from tuneterm.config import run_config  # noqa: E402
from tuneterm.engine.process import EngineProcess  # noqa: E402
from tuneterm.runs import launcher  # noqa: E402
from tuneterm.store.files import atomic_write_json  # noqa: E402
from tuneterm.store.runs import RunStore  # noqa: E402

PAD = 256 * 1024
CMD = [sys.executable, str(HERE), "tuneterm.engine"]


def read_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((run_dir / "checkpoints" / "last.json").read_bytes()))
    except FileNotFoundError:
        return None


class StandInEngine(EngineProcess):
    def _train(self, resume: bool) -> int:
        cfg = run_config(self.store, self.run_id)
        per_epoch = int(os.environ.get("STANDIN_STEPS", "20"))
        step_s = float(os.environ.get("STANDIN_STEP_S", "0.01"))
        # A file the last step waits for: a test that must see the run still running at some
        # point says when it may end, instead of racing a run of a fixed length.
        gate = os.environ.get("STANDIN_GATE")
        epochs = cfg.train.epochs
        step = epoch = batch = 0
        ck = read_checkpoint(self.dir) if resume else None
        if ck is not None:
            step, epoch, batch = ck["step"], ck["epoch"], ck["batch"]
        if resume:
            self.emit("resume", step=step, epoch=epoch, batch=batch, from_checkpoint=ck is not None)
        self.progress(force=True, total_steps=per_epoch * epochs, epochs=epochs, step=step)
        self.set_status("running")
        (self.dir / "checkpoints").mkdir(mode=0o755, exist_ok=True)

        def save() -> None:
            state = {"step": step, "epoch": epoch, "batch": batch, "pad": "x" * PAD}
            atomic_write_json(self.dir / "checkpoints" / "last.json", state)

        while epoch < epochs:
            while batch < per_epoch:
                time.sleep(step_s)
                while gate and step + 1 == per_epoch * epochs and not Path(gate).exists():
                    time.sleep(0.02)
                step, batch = step + 1, batch + 1
                if step % cfg.train.log_every == 0:
                    self.emit("train", step=step, epoch=epoch + 1, loss=1.0 / step, lr=0.1)
                    self.progress(step=step, epoch=epoch, last_loss=1.0 / step)
                if self.stop_requested():
                    save()
                    self.emit("checkpoint", which="last", step=step, epoch=epoch, batch=batch)
                    self.set_status("stopped")
                    return 0
            epoch, batch = epoch + 1, 0
            self.emit("val", epoch=epoch, step=step, val_loss=1.0 / step, val_acc=0.5)
            save()
            self.emit("checkpoint", which="epoch", step=step, epoch=epoch, best=True)
            self.progress(force=True, epoch=epoch, step=step)
        self.emit("test", split="test", loss=0.1, acc=0.9, top5=1.0, n=10, epoch=epoch)
        self.set_status("completed")
        return 0


# -- killing at random points and checking what survives ----------------------------------------
@dataclass
class KillLog:
    kills: int = 0
    missed: int = 0  # the run ended before the chosen moment: no kill
    resumes: int = 0
    first_look_crashed: int = 0
    lost_flushed: int = 0
    details: list[str] = field(default_factory=list)


def _wait_gone(pid: int, timeout: float = 120.0) -> None:
    """Until the process has exited (a zombie counts: it runs no more code). The deadline is
    helpers/waiting.py's PATIENCE (this file also runs as a script, without tests/ on its
    path): a SIGKILLed engine's teardown can take seconds on a loaded machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.002)
    raise AssertionError(f"process {pid} still running after {timeout} s")


def _wait_ended(store: RunStore, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = store.info(run_id)
        if not info.alive:
            return info.status
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} still {store.info(run_id).status} after {timeout} s")


def check_store(store: RunStore, run_id: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The store reads whole; seq runs 0..n-1; every event a reader saw before is still there."""
    events = list(store.events(run_id))  # raises on a torn or damaged segment
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(len(events))), f"{run_id}: seq gaps or repeats"
    assert events[: len(seen)] == seen, f"{run_id}: an event seen before the kill was lost"
    assert [r.id for r in store.list()] == store.ids()  # every run still loads
    return events


def kill_chain(
    store: RunStore,
    run_id: str,
    rng: random.Random,
    kills: int,
    checkpoint_step: Callable[[Path], int],
    expected_events: int,
    max_delay: float = 0.1,
    timeout: float = 120.0,
) -> KillLog:
    """Kill the run's engine with SIGKILL at `kills` random moments (picked on the event stream:
    after a random number of events plus a random delay), checking the store after each, and
    resuming from the last checkpoint; then let the last resume complete and check the end."""
    log = KillLog()
    reader = store.events(run_id)
    seen: list[dict[str, Any]] = []
    resumed_from: list[int] = []
    lives: list[int] = []  # the seq at which each resumed engine's events begin
    for _ in range(kills):
        # A random number of events into this engine's life, spread so that all kills
        # land before the run can complete, then a random delay.
        target = len(seen) + rng.randint(1, max(2, expected_events // (kills + 1)))
        while len(seen) < target and store.info(run_id).alive:
            seen += reader.poll()
            time.sleep(0.003)
        time.sleep(rng.uniform(0.0, max_delay))
        info = store.info(run_id)
        if not info.alive or info.meta is None:
            log.missed += 1
            break
        pid = info.meta.pid
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        first = store.info(run_id)
        if first.status != "crashed" and any(
            e["kind"] == "status" and e["status"] == "completed" for e in store.events(run_id)
        ):
            log.missed += 1  # it finished between our look and the kill
            break
        assert first.status == "crashed", (run_id, first.status, first.reason)
        log.first_look_crashed += 1
        log.kills += 1
        seen += reader.poll()  # what was flushed before the kill and not yet read
        check_store(store, run_id, seen)
        resumed_from.append(checkpoint_step(store.run_dir(run_id)))
        lives.append(len(list(store.events(run_id))))
        launcher.resume(store, run_id)
        log.resumes += 1
    status = _wait_ended(store, run_id, timeout)
    events = check_store(store, run_id, seen)
    assert status == "completed", (run_id, status, store.info(run_id).reason)
    # Each resumed engine that got as far as loading its checkpoint says where it resumed: the
    # step of the checkpoint on disk when it was launched. (A kill during start-up, before
    # torch is imported, leaves no resume event for that life.)
    resumes = [e for e in events if e["kind"] == "resume"]
    for i, (start, step) in enumerate(zip(lives, resumed_from, strict=True)):
        end = lives[i + 1] if i + 1 < len(lives) else len(events)
        mine = [e for e in resumes if start <= e["seq"] < end]
        assert all(e["step"] == step for e in mine), (mine, step)
        assert mine or i + 1 < len(lives), "the last resume must report where it resumed"
    for r in resumes:  # training continued from the checkpoint, not from the start
        later = [e for e in events if e["seq"] > r["seq"] and e["kind"] == "train"]
        assert later and later[0]["step"] > r["step"]
    final = events[-1]
    assert final["kind"] == "status" and final["events"] == len(events)
    meta = store.info(run_id).meta
    assert meta is not None and meta.events == len(events) and meta.step == meta.total_steps
    # Temp files a kill left are removed when the run is started again; a kill that lands in
    # the completed engine's last meta.json write (a "missed" moment) leaves one for good.
    # Only once the engine has exited: "completed" is on disk before its last meta.json write
    # (the end time), whose temp file a look made in between would count as left behind.
    _wait_gone(meta.pid)
    leftovers = [p.name for p in store.run_dir(run_id).rglob(".*.tmp")]
    assert leftovers == [] or log.missed, leftovers
    log.details.append(f"{run_id}: {log.kills} kills, resumed from steps {resumed_from}")
    return log


def standin_step(run_dir: Path) -> int:
    ck = read_checkpoint(run_dir)
    return int(ck["step"]) if ck else 0


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "tuneterm.engine"]
    run_dir = Path(args[0]).resolve()
    engine = StandInEngine(RunStore(run_dir.parent), run_dir.name)
    return engine.run("--resume" in args)


if __name__ == "__main__":
    raise SystemExit(main())
