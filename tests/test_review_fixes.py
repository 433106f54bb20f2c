"""Regressions found in review: each test fails on the code before its fix."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tuneterm.config import RunConfig
from tuneterm.engine.process import EngineProcess
from tuneterm.runs import launcher, lifecycle
from tuneterm.store import files as store_files
from tuneterm.store.events import EventReader, EventWriter
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunStore


def test_sigterm_handler_never_takes_the_event_writer_lock(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run_id = store.create(RunConfig()).id
    engine = EngineProcess(store, run_id)
    try:
        # The handler runs between bytecodes of whatever the main thread was doing, possibly
        # inside emit() holding the writer's lock: it must not need that lock.
        with engine.writer._lock:
            t = threading.Thread(target=engine._on_term, args=(signal.SIGTERM, None))
            t.start()
            t.join(2.0)
            assert not t.is_alive(), "the signal handler blocked on the event writer's lock"
        assert engine.stop_requested() and engine._stop_signal == "SIGTERM"
    finally:
        engine.writer.close()


def test_resume_waits_for_an_engine_that_is_still_shutting_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore(tmp_path / "runs")
    run_id = store.create(RunConfig()).id
    # A live process that is the run's engine by pid, start time and command line, whose
    # meta.json already says `stopped` (the moment between the final status and its exit).
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "tuneterm.engine", run_id]
    )
    try:
        import psutil

        meta = load_meta(store.meta_path(run_id))
        meta.status, meta.pid = "stopped", sleeper.pid
        meta.pid_start = psutil.Process(sleeper.pid).create_time()
        save_meta(store.meta_path(run_id), meta)
        monkeypatch.setattr(lifecycle, "SHUTDOWN_WAIT", 0.3)
        with pytest.raises(launcher.RunStateError, match="still shutting down"):
            launcher.resume(store, run_id)
        with pytest.raises(launcher.RunStateError, match="still shutting down"):
            launcher.delete(store, run_id)
        assert store.run_dir(run_id).is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_failed_flush_keeps_its_events_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = EventWriter(tmp_path / "events", background=False)
    for i in range(5):
        writer.emit("train", step=i)
    real = store_files.atomic_write_bytes
    calls = {"n": 0}

    def full_disk_once(path: Path, data: bytes, fsync: bool = True) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        real(path, data, fsync)

    monkeypatch.setattr("tuneterm.store.events.atomic_write_bytes", full_disk_once)
    with pytest.raises(OSError):
        writer.flush()
    writer.emit("train", step=5)
    assert writer.flush() == 6
    writer.close()
    events = EventReader(tmp_path / "events").poll()
    assert [e["step"] for e in events] == [0, 1, 2, 3, 4, 5]
    assert [e["seq"] for e in events] == list(range(6))


def test_mix_random_state_survives_a_resume() -> None:
    import torch

    from tuneterm.config import from_dict
    from tuneterm.engine.techniques.mix import Mix

    cfg = from_dict({"mix": {"mixup": 0.2}})
    a = Mix(cfg)
    torch.rand(3, generator=a.gen)  # some draws before the checkpoint
    state = a.state_dict()
    expected = torch.rand(3, generator=a.gen)
    b = Mix(cfg)
    b.load_state_dict(state)
    assert torch.equal(torch.rand(3, generator=b.gen), expected)
