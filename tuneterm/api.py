"""The API a training script calls: `tuneterm.log`, `should_stop`, `run_dir`, `define_metric`.

It imports neither torch nor textual, and outside tuneterm (no `TUNETERM_RUN_DIR` in the
environment) every call does nothing, so a script runs the same with or without tuneterm.

One writer per file: the script appends to its own `RUN/script/metrics.jsonl`, one whole line
per `os.write` on an `O_APPEND` descriptor, and the run's supervisor tails that file with a
byte cursor and turns each line into events. Once `log()` has returned, the line is in the
kernel: a kill -9 of the script right after loses nothing (a crash of the machine can).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_RUN_DIR = "TUNETERM_RUN_DIR"
ENV_RESUME = "TUNETERM_RESUME"
ENV_STOP_SIGNAL = "TUNETERM_STOP_SIGNAL"
METRICS_FILE = "script/metrics.jsonl"
STOP_FILE = "script/stop"  # written by the supervisor when it is asked to stop

__all__ = [
    "checkpoint_dir",
    "define_metric",
    "hello",
    "log",
    "resuming",
    "run_dir",
    "should_stop",
]

_lock = threading.Lock()
_fd: int | None = None
_stop = threading.Event()
_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps builds one a call
_dir_cache: tuple[str, Path | None] = ("", None)
_handler = False  # our stop handler is installed
_stop_checked = 0.0  # when should_stop() last looked for the stop file
STOP_FILE_EVERY = 0.1  # seconds between those looks: a stat per call would cost the loop


def run_dir() -> Path | None:
    """The run's folder, or None when the script does not run under tuneterm."""
    global _dir_cache
    where = os.environ.get(ENV_RUN_DIR, "")
    if _dir_cache[0] != where:
        _dir_cache = (where, Path(where) if where else None)
    return _dir_cache[1]


def checkpoint_dir() -> Path | None:
    """Where the script should save its checkpoints (RUN/checkpoints), or None."""
    where = run_dir()
    if where is None:
        return None
    path = where / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resuming() -> bool:
    """Whether tuneterm started this process to resume a stopped or crashed run."""
    return run_dir() is not None and os.environ.get(ENV_RESUME, "") == "1"


def _write(record: Mapping[str, Any]) -> None:
    global _fd
    where = run_dir()
    if where is None:
        return
    line = (_ENCODER.encode(record) + "\n").encode()
    with _lock:
        if _fd is None:
            (where / "script").mkdir(parents=True, exist_ok=True)
            _fd = os.open(where / METRICS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            install_stop_handler()
        os.write(_fd, line)  # one whole line: the supervisor never sees half of it


def _number(value: Any) -> float | None:
    """As `tuneterm.store.values.decode_value` (not imported: `import tuneterm` stays cheap).
    nan, inf and -inf are kept: Python's json writes them, the supervisor reads them, and
    health's nan_loss alert is raised on them."""
    if type(value) is float:  # the common case, first: log() runs every step
        return value
    try:
        return float(value)  # ints, numpy and 0-d torch scalars
    except (TypeError, ValueError, OverflowError):
        return None


def log(metrics: Mapping[str, Any], step: int | None = None, epoch: float | None = None) -> None:
    """Record metrics at a step. Names starting with `eval_`, `val_` or `test_`, and any name
    but `loss`, `lr` and `learning_rate`, become the run's curves; `loss` is its train loss.
    Values that are not numbers are skipped; nan, inf and -inf are kept (and alerted)."""
    if not os.environ.get(ENV_RUN_DIR):
        return
    values = {}
    for k, v in metrics.items():
        number = _number(v)
        if number is not None:
            values[str(k)] = number
    record: dict[str, Any] = {"t": round(time.time(), 3), "m": values}
    if step is not None:
        record["step"] = int(step)
    if epoch is not None:
        record["epoch"] = float(epoch)
    _write(record)


def hello() -> None:
    """Tell the supervisor, early, that this script reports through the API: from then on its
    printed lines are not read for metrics too (integrations call it when they start)."""
    _write({"api": 1})


def define_metric(name: str, higher: bool = True, best: bool = False) -> None:
    """Say which way a metric is better (otherwise guessed from its name: loss, err, mae...
    are lower) and, with `best`, that it is the one that ranks runs."""
    _write({"define": str(name), "higher": bool(higher), "best": bool(best)})


def should_stop() -> bool:
    """True once tuneterm has asked the script to stop (`tuneterm stop`): save a checkpoint
    and return. Always False outside tuneterm."""
    global _stop_checked
    if _stop.is_set():
        return True
    where = run_dir()
    if where is None:
        return False
    if not _handler:
        install_stop_handler()
    now = time.monotonic()
    if now - _stop_checked >= STOP_FILE_EVERY:  # the file covers a signal we could not catch
        _stop_checked = now
        if (where / STOP_FILE).exists():
            _stop.set()
    return _stop.is_set()


def _on_stop(signum: int, frame: object) -> None:
    _stop.set()


def install_stop_handler() -> None:
    """Catch the stop signal (SIGTERM, or SIGINT when the run says so) so that it sets
    `should_stop()` instead of ending the script. Integrations call it again once their
    framework has installed handlers of its own. Main thread only; a no-op elsewhere."""
    global _handler
    if run_dir() is None or threading.current_thread() is not threading.main_thread():
        return
    name = os.environ.get(ENV_STOP_SIGNAL, "SIGTERM")
    sig = signal.SIGINT if name == "SIGINT" else signal.SIGTERM
    if signal.getsignal(sig) is not _on_stop:
        signal.signal(sig, _on_stop)
    _handler = True
