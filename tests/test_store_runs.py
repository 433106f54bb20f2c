"""The run store: folders, ids, lookup, metadata and derived status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tuneterm.config import RunConfig, run_config
from tuneterm.proc import ENGINE_MARKER, ProcessIdentity, is_alive
from tuneterm.runs.lifecycle import new_run
from tuneterm.store import AmbiguousRun, RunNotFound, RunStore
from tuneterm.store.events import EventWriter, read_all
from tuneterm.store.ids import is_run_id
from tuneterm.store.meta import STARTUP_GRACE, RunMeta, save_meta


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def make_run(store: RunStore, run_id: str, **fields: object) -> Path:
    """A run folder with a meta.json, as the launcher and engine would leave it."""
    path = store.root / run_id
    path.mkdir(parents=True)
    save_meta(path / "meta.json", RunMeta(id=run_id, **fields))  # type: ignore[arg-type]
    return path


A = "20260101-120000-resnet18-aaaa"
B = "20260101-120000-resnet18-aaab"
C = "20260102-093000-vit_b_16-0f0f"


def test_create_writes_a_complete_run_folder(store: RunStore) -> None:
    info = store.create(new_run(RunConfig(), name="baseline"))
    assert is_run_id(info.id) and "-resnet18-" in info.id
    assert info.path == store.root / info.id
    assert info.status == "starting"  # created, engine not up yet, within the grace period
    assert info.name == "baseline" and info.meta is not None and info.meta.model == "resnet18"
    assert (info.path / "config.toml").is_file()
    assert run_config(store, info.id) == RunConfig()
    assert store.ids() == [info.id]
    with EventWriter(store.events_dir(info.id)) as w:
        w.emit("status", status="running")
    assert [e["kind"] for e in store.events(info.id).poll()] == ["status"]


def test_created_files_are_not_world_writable(store: RunStore) -> None:
    old = os.umask(0)  # even with the most permissive umask
    try:
        info = store.create(new_run(RunConfig()))
        store.set_label(info.id, name="x", tags=["a"], notes="n")
        with EventWriter(store.events_dir(info.id)) as w:
            w.emit("status", status="running")
    finally:
        os.umask(old)
    paths = [store.root, *store.root.rglob("*")]
    assert len(paths) >= 7
    for p in paths:
        assert p.stat().st_mode & 0o002 == 0, f"{p} is world-writable"


@pytest.mark.parametrize(
    "bad",
    ["../x", "..", "/", "/etc", "/tmp/20260101-120000-resnet18-aaaa", "a/b", "", ".", "~"],
)
def test_run_ids_cannot_escape_the_runs_folder(store: RunStore, bad: str) -> None:
    make_run(store, A)
    with pytest.raises(RunNotFound):
        store.run_dir(bad)
    with pytest.raises(LookupError):
        store.resolve(bad)
    with pytest.raises(RunNotFound):
        store.run_dir(f"../{A}")


def test_a_symlinked_run_folder_pointing_outside_is_refused(
    store: RunStore, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store.root.mkdir()
    (store.root / A).symlink_to(outside)
    with pytest.raises(RunNotFound):
        store.run_dir(A)


def test_prefix_resolution(store: RunStore) -> None:
    for run_id in (A, B, C):
        make_run(store, run_id)
    assert store.resolve(A) == A
    assert store.resolve("20260102") == C
    assert store.resolve(B[:-1] + "b") == B
    assert store.resolve("20260101-120000-resnet18-aaaa") == A
    with pytest.raises(AmbiguousRun, match="matches 2 runs"):
        store.resolve("20260101")
    with pytest.raises(AmbiguousRun):
        store.resolve("2026")
    with pytest.raises(RunNotFound):
        store.resolve("1999")
    with pytest.raises(RunNotFound):
        store.resolve("20260101-120000-resnet18-aaac")


def test_name_lookup(store: RunStore) -> None:
    make_run(store, A, name="baseline")
    make_run(store, B, name="twin")
    make_run(store, C, name="twin")
    assert store.resolve("baseline") == A
    store.set_label(C, name="My best run (v2)")  # a label name overrides the meta name
    assert store.info(C).name == "My best run (v2)"
    assert store.resolve("My best run (v2)") == C
    assert store.resolve("twin") == B
    store.set_label(A, name="twin")
    with pytest.raises(AmbiguousRun):
        store.resolve("twin")
    with pytest.raises(RunNotFound):
        store.resolve("no such name")
    with pytest.raises(ValueError):
        store.set_label(A, name="../evil")


def test_damaged_or_newer_meta_is_unreadable_and_the_rest_still_list(store: RunStore) -> None:
    good = make_run(store, A, status="completed", final={"val_acc": 0.9})
    assert good.exists()
    damaged = store.root / B
    damaged.mkdir()
    (damaged / "meta.json").write_text('{"id": "' + B + '", "status": "run')
    newer = make_run(store, C)
    meta = json.loads((newer / "meta.json").read_text())
    meta["format"] = 99
    (newer / "meta.json").write_text(json.dumps(meta))
    missing = store.root / "20260103-000000-resnet18-dead"
    missing.mkdir()
    wrong_id = make_run(store, "20260104-000000-resnet18-beef")
    meta = json.loads((wrong_id / "meta.json").read_text())
    meta["id"] = A
    (wrong_id / "meta.json").write_text(json.dumps(meta))
    (store.root / "not-a-run").mkdir()  # ignored: not a run id

    runs = {r.id: r for r in store.list()}
    assert set(runs) == {A, B, C, missing.name, wrong_id.name}
    assert runs[A].status == "completed" and runs[A].meta is not None
    for rid, words in (
        (B, "damaged"),
        (C, "newer"),
        (missing.name, "missing"),
        (wrong_id.name, "names run"),
    ):
        assert runs[rid].status == "unreadable", rid
        assert runs[rid].meta is None
        assert words in runs[rid].reason, runs[rid].reason
    assert [r.id for r in store.list(status="unreadable")] == sorted(set(runs) - {A})
    bad_fields = make_run(store, "20260105-000000-resnet18-0bad")
    (bad_fields / "meta.json").write_text(json.dumps({"id": bad_fields.name, "epoch": "many"}))
    assert store.info(bad_fields.name).status == "unreadable"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    return proc.pid


def test_running_with_a_dead_pid_reads_crashed(store: RunStore) -> None:
    make_run(store, A, status="running", pid=_dead_pid(), pid_start=time.time() - 5)
    info = store.info(A)
    assert info.status == "crashed" and "ended without a final status" in info.reason
    assert not info.alive
    make_run(store, B, status="completed", pid=_dead_pid(), pid_start=time.time() - 5)
    assert store.info(B).status == "completed"  # a final status is kept


def test_running_with_a_reused_pid_reads_crashed(store: RunStore) -> None:
    me = psutil.Process()
    make_run(store, A, status="running", pid=me.pid, pid_start=me.create_time() - 3600)
    assert store.info(A).status == "crashed"
    # Right pid and start time, but not an engine process for this run: also not ours.
    make_run(store, B, status="running", pid=me.pid, pid_start=me.create_time())
    assert store.info(B).status == "crashed"


def test_a_live_engine_process_reads_running_until_it_dies(store: RunStore) -> None:
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, ENGINE_MARKER, A])
    try:
        start = psutil.Process(proc.pid).create_time()
        make_run(store, A, status="running", pid=proc.pid, pid_start=start)
        assert is_alive(ProcessIdentity(proc.pid, start, A))
        assert store.info(A).status == "running" and store.info(A).alive
        make_run(store, B, status="running", pid=proc.pid, pid_start=start)
        assert store.info(B).status == "crashed"  # the process is some other run's
    finally:
        proc.kill()
        proc.wait()
    assert store.info(A).status == "crashed"


def test_created_without_an_engine_becomes_crashed_after_the_grace_period(
    store: RunStore,
) -> None:
    make_run(store, A, status="created")
    assert store.info(A).status == "starting"
    make_run(store, B, status="created", created=time.time() - STARTUP_GRACE - 1)
    info = store.info(B)
    assert info.status == "crashed" and "never started" in info.reason


def test_delete_removes_the_folder(store: RunStore) -> None:
    info = store.create(new_run(RunConfig()))
    with EventWriter(store.events_dir(info.id)) as w:
        w.emit("status", status="completed")
    assert read_all(store.events_dir(info.id))
    store.delete(info.id)
    assert store.ids() == [] and not info.path.exists()
    assert list(store.root.iterdir()) == []
