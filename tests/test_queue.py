"""The run queue: queued runs in the real store, slots, and the real scheduler process."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers.cli import TINY, Cli, wait_for

from tuneterm.config import ConfigError, loads, run_config
from tuneterm.runs import launcher, runqueue
from tuneterm.store.meta import STARTUP_GRACE, load_meta, save_meta
from tuneterm.store.runs import RunInfo, RunStore


def _enqueue(store: RunStore, name: str) -> RunInfo:
    return runqueue.enqueue(store, loads(TINY), name=name)


def _order(store: RunStore) -> list[str]:
    return [r.name for r in runqueue.queued(store)]


def test_queued_runs_order_move_cancel_and_status(runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    a, b, c = (_enqueue(store, n) for n in ("a", "b", "c"))
    assert _order(store) == ["a", "b", "c"]
    # A queued run has no engine and never reads as crashed, however long it waits.
    meta = load_meta(a.path / "meta.json")
    meta.created -= 10 * STARTUP_GRACE
    save_meta(a.path / "meta.json", meta)
    assert store.info(a.id).status == "queued" and not store.info(a.id).alive
    assert {r.name: r.queue_position for r in store.list()} == {"a": 1, "b": 2, "c": 3}
    runqueue.move(store, c.id, 1)
    assert _order(store) == ["c", "a", "b"]
    runqueue.move(store, c.id, 99)  # past the end = last
    assert _order(store) == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="position = 0"):
        runqueue.move(store, a.id, 0)
    # stop and kill of a queued run cancel it; the folder stays, with status cancelled
    assert launcher.stop(store, b.id).status == "cancelled"
    assert launcher.kill(store, c.id).status == "cancelled"
    assert _order(store) == ["a"]
    with pytest.raises(runqueue.QueueStateError, match="cancelled, not queued"):
        runqueue.cancel(store, b.id)
    with pytest.raises(launcher.RunStateError):
        launcher.stop(store, b.id)
    launcher.delete(store, a.id)  # a queued run can be deleted: it leaves the queue first
    assert runqueue.queued(store) == [] and not a.path.exists()
    assert _enqueue(store, "d").meta is not None  # positions go on after the deleted ones


def test_resume_through_the_queue_and_cancel_restores(runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    info = _enqueue(store, "r")
    meta = load_meta(info.path / "meta.json")
    meta.status, meta.pid, meta.pid_start = "stopped", 0, 0.0
    save_meta(info.path / "meta.json", meta)
    queued = runqueue.requeue(store, info.id)
    assert queued.status == "queued" and queued.meta and queued.meta.queued_from == "stopped"
    assert runqueue.cancel(store, info.id).status == "stopped"  # back where it was
    with pytest.raises(launcher.RunStateError, match="only stopped"):
        runqueue.requeue(store, _enqueue(store, "q").id)


def _info(store: RunStore, name: str, status: str, gpus: str) -> RunInfo:
    info = _enqueue(store, name)
    meta = load_meta(info.path / "meta.json")
    meta.status, meta.gpus, meta.dequeued = status, gpus, time.time()
    save_meta(info.path / "meta.json", meta)
    return store.info(info.id)


def test_slots_per_gpu_and_multi_gpu_runs(runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    settings = runqueue.QueueSettings(per_gpu=2, cpu_slots=3)
    slots = runqueue.capacity(settings, ["0", "1"])
    assert slots == {"0": 2, "1": 2}
    live = [_info(store, "x", "created", "0"), _info(store, "y", "created", "0,1")]
    done = _info(store, "z", "completed", "1")
    assert [r.status for r in live] == ["starting", "starting"]
    free = runqueue.free_slots([*live, done], slots)
    assert free == {"0": 0, "1": 1}
    assert runqueue.allocate(free, 1) == ["1"]
    assert runqueue.allocate(free, 2) is None  # only one GPU has room
    assert runqueue.allocate({"0": 1, "1": 2, "2": 2}, 2) == ["1", "2"]  # least loaded
    cpu = runqueue.capacity(settings, [])
    assert cpu == {"cpu": 3}
    assert runqueue.free_slots(live, cpu) == {"cpu": 3 - 2}  # CPU-only: "0" is not a slot
    assert runqueue.allocate({"cpu": 0}, 1) is None and runqueue.allocate({"cpu": 1}, 4) == ["cpu"]
    assert runqueue.gpus_needed(loads(TINY)) == 1  # no train.gpus key: one GPU
    with pytest.raises(ConfigError, match="per_gpu = 0"):
        runqueue.QueueSettings(per_gpu=0).check()


def test_detect_gpus_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert runqueue.detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert runqueue.detect_gpus() == []


def test_one_scheduler_per_runs_folder(runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    runqueue.save_settings(store, runqueue.QueueSettings(gpus=[]))  # skip GPU detection
    state, started = runqueue.start_scheduler(store)
    try:
        assert started and runqueue.scheduler(store) == state
        again, started_again = runqueue.start_scheduler(store)
        assert again.pid == state.pid and not started_again
        second = subprocess.run(
            [*runqueue.SCHEDULER_CMD, str(store.root)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 3 and "another scheduler" in second.stdout
        assert psutil.pid_exists(state.pid)
    finally:
        assert runqueue.stop_scheduler(store) is not None
    assert runqueue.scheduler(store) is None
    # A stale identity file (a killed scheduler's) is never taken for a live scheduler.
    stale = dict(json.loads(json.dumps(state.__dict__)), pid=os.getpid())
    (runs_dir / ".queue" / "scheduler.json").write_text(json.dumps(stale))
    assert runqueue.scheduler(store) is None


def _meta(runs_dir: Path, run_id: str) -> dict:
    return json.loads((runs_dir / run_id / "meta.json").read_text())


def test_sweep_queue_runs_one_at_a_time_and_survives_scheduler_kill(
    cli: Cli, tiny_config: Path, runs_dir: Path
) -> None:
    """A 2x2 sweep queued without a scheduler; reorder and cancel; one slot (a fake GPU id
    through the `--gpus` seam); the scheduler is killed mid-queue and started again."""
    small = ["--set", "train.epochs=1", "--set", "data.per_class=12"]
    made = cli.json(
        "sweep", str(tiny_config), *small, "--grid", "train.lr=0.003,0.001",
        "--grid", "freeze.strategy=none,linear_probe", "--name", "g", "--no-start",
    )  # fmt: skip
    ids = [r["id"] for r in made["runs"]]
    assert made["keys"] == ["train.lr", "freeze.strategy"] and len(ids) == 4
    assert [r["params"] for r in made["runs"]][1] == {
        "train.lr": 0.003,
        "freeze.strategy": "linear_probe",
    }
    store = RunStore(runs_dir)
    for run_id in ids:
        info = store.info(run_id)
        assert info.status == "queued" and "sweep:g" in info.label.tags
        assert run_config(store, run_id).train.epochs == 1
    cli("queue", "move", ids[3], "1", check=0)
    cli("queue", "cancel", ids[1], check=0)
    listed = cli.json("queue")
    assert [r["id"] for r in listed["queued"]] == [ids[3], ids[0], ids[2]]
    assert [r["queue_position"] for r in listed["queued"]] == [1, 2, 3]
    cli("stop", ids[2], check=0)  # stopping a queued run cancels it (saves a run's time here)
    assert listed["scheduler"] is None
    ls = {r["id"]: r for r in cli.json("ls")}
    assert ls[ids[3]]["queue_position"] == 1 and ls[ids[1]]["status"] == "cancelled"

    started = cli.json("queue", "start", "--gpus", "7", "--per-gpu", "1")
    assert started["started"] and started["scheduler"]["gpus"] == ["7"]
    first = ids[3]
    wait_for(lambda: store.info(first).status == "running")
    engine = psutil.Process(_meta(runs_dir, first)["pid"])
    assert engine.environ().get("CUDA_VISIBLE_DEVICES") == "7"  # the assigned GPU
    assert store.info(ids[0]).status == "queued"  # one slot: the next one waits
    os.kill(started["scheduler"]["pid"], signal.SIGKILL)  # the scheduler dies; runs go on
    wait_for(lambda: store.info(first).status == "completed")
    assert store.info(ids[0]).status == "queued" and cli.json("queue")["scheduler"] is None
    restarted = cli.json("queue", "start")  # the saved settings (GPU 7) come back too
    assert restarted["started"] and restarted["scheduler"]["gpus"] == ["7"]
    order = [ids[3], ids[0]]
    wait_for(lambda: all(store.info(i).status == "completed" for i in order), timeout=240)
    metas = [_meta(runs_dir, i) for i in order]
    for before, after in itertools.pairwise(metas):
        assert before["ended"] <= after["started"]  # one at a time, in queue order
    assert all(m["gpus"] == "7" for m in metas)
    assert store.info(ids[1]).status == store.info(ids[2]).status == "cancelled"
    best = cli.json("sweep-best", "g")
    values = [r["value"] for r in best["runs"] if r["value"] is not None]
    assert len(values) == 2 and best["best"]["value"] == max(values)
    assert {r["id"] for r in best["runs"][2:]} == {ids[1], ids[2]}  # no value: last
    assert cli("queue", "stop", check=0).returncode == 0
    assert cli("queue", "stop", check=3).returncode == 3  # nothing left to stop
    text = cli("sweep-best", "g", "--metric", "val_loss", check=0).stdout
    assert "best:" in text and "train.lr" in text


def test_cli_run_queue_and_wrong_states(cli: Cli, tiny_config: Path, runs_dir: Path) -> None:
    queued = cli.json("run", str(tiny_config), "--queue", "--no-start", "--name", "later")
    assert queued["status"] == "queued" and queued["queue_position"] == 1
    assert queued["scheduler"] is None  # --no-start
    assert cli("resume", queued["id"], "--queue", check=3).returncode == 3
    assert cli("queue", "move", queued["id"], "0", check=2).returncode == 2
    assert cli.json("queue", "cancel", "later")["status"] == "cancelled"
    assert cli("queue", "cancel", "later", check=3).returncode == 3
    assert [r["name"] for r in cli.json("ls", "--status", "cancelled")] == ["later"]


def test_scheduler_module_runs_as_a_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tuneterm.runs.scheduler", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "runs_dir" in out.stdout
