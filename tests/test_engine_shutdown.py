"""An engine that is shutting down: its SIGTERM handler never blocks on the event writer, and
`resume` and `delete` wait for its process to exit (regressions found in review)."""

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
from tuneterm.runs.lifecycle import new_run
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunStore


def test_sigterm_handler_never_takes_the_event_writer_lock(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run_id = store.create(new_run(RunConfig())).id
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
    run_id = store.create(new_run(RunConfig())).id
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
