"""The TinyDB event queue: one writer, cursor readers, sealed segments, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.waiting import PATIENCE, wait_for

from tuneterm.store import files as store_files
from tuneterm.store.events import (
    LOCK_FILE,
    MAX_PENDING,
    Cursor,
    EventReader,
    EventWriter,
    WriterBusy,
    count_events,
    last_event,
    list_segments,
    read_all,
    segment_path,
)


def seqs(events: list[dict]) -> list[int]:
    return [e["seq"] for e in events]


def segment_sizes(events_dir: Path) -> list[int]:
    return [
        len(json.loads(segment_path(events_dir, i).read_bytes())["events"])
        for i in list_segments(events_dir)
    ]


def write(events_dir: Path, n: int, start: int = 0, per_flush: int = 37, **kw) -> None:
    with EventWriter(events_dir, background=False, **kw) as w:
        for i in range(start, start + n):
            w.emit("train", step=i)
            if (i - start) % per_flush == per_flush - 1:
                w.flush()


# -- in one process --------------------------------------------------------------------------------
def test_round_trip_keeps_fields_order_and_seq(tmp_path: Path) -> None:
    d = tmp_path / "events"
    with EventWriter(d) as w:
        w.emit("status", status="running")
        for i in range(20):
            w.emit("train", step=i, loss=1.0 / (i + 1), lr=1e-3, tags=["a"], extra={"x": i})
    events = read_all(d)
    assert seqs(events) == list(range(21))
    assert events[0]["kind"] == "status" and events[0]["status"] == "running"
    assert events[5] == {
        "seq": 5,
        "t": events[5]["t"],
        "kind": "train",
        "step": 4,
        "loss": 0.2,
        "lr": 1e-3,
        "tags": ["a"],
        "extra": {"x": 4},
    }
    assert all(abs(e["t"] - time.time()) < 60 for e in events)
    assert count_events(d) == 21
    assert last_event(d)["step"] == 19
    assert last_event(d, kind="status")["status"] == "running"
    assert last_event(d, kind="nope") is None


def test_background_flusher_makes_events_visible_without_close(tmp_path: Path) -> None:
    d = tmp_path / "events"
    w = EventWriter(d)
    try:
        reader = EventReader(d)
        assert reader.poll() == []
        w.emit("train", step=1)
        got = wait_for(reader.poll, every=0.01)  # the flusher's next pass, however late
        assert seqs(got) == [0]
    finally:
        w.close()


def test_missing_queue_reads_empty(tmp_path: Path) -> None:
    reader = EventReader(tmp_path / "nothing-here")
    assert reader.poll() == []
    assert reader.poll(limit=5) == []
    assert read_all(tmp_path / "nothing-here") == []
    assert last_event(tmp_path / "nothing-here") is None


def test_segments_are_sealed_at_a_bounded_size(tmp_path: Path) -> None:
    d = tmp_path / "events"
    write(d, 1050, segment_events=100, per_flush=37)
    assert list_segments(d) == list(range(11))
    assert segment_sizes(d) == [100] * 10 + [50]
    assert seqs(read_all(d)) == list(range(1050))
    # One flush bigger than several segments is split across them, never overfilling one.
    d2 = tmp_path / "big"
    write(d2, 450, segment_events=100, per_flush=1000)
    assert segment_sizes(d2) == [100, 100, 100, 100, 50]


def test_reader_cursor_crosses_segments_while_writing(tmp_path: Path) -> None:
    d = tmp_path / "events"
    reader = EventReader(d)
    seen: list[int] = []
    with EventWriter(d, background=False, segment_events=50) as w:
        for i in range(1000):
            w.emit("train", step=i)
            if i % 13 == 0:
                w.flush()
            if i % 29 == 0:
                seen += seqs(reader.poll())
    seen += seqs(reader.poll())
    assert seen == list(range(1000))
    assert reader.cursor.segment == 19 and reader.cursor.doc_id == 50
    assert reader.poll() == []


def test_poll_limit_returns_at_most_limit_in_order(tmp_path: Path) -> None:
    d = tmp_path / "events"
    write(d, 530, segment_events=100)
    reader = EventReader(d)
    seen: list[int] = []
    while batch := reader.poll(limit=7):
        assert 1 <= len(batch) <= 7
        seen += seqs(batch)
    assert seen == list(range(530))
    # A limit exactly at a segment end, and a limit larger than everything.
    reader = EventReader(d)
    assert seqs(reader.poll(limit=100)) == list(range(100))
    assert seqs(reader.poll(limit=10_000)) == list(range(100, 530))
    assert reader.poll(limit=1) == []
    assert seqs(list(EventReader(d))) == list(range(530))


def test_reader_resumes_from_a_saved_cursor(tmp_path: Path) -> None:
    d = tmp_path / "events"
    write(d, 250, segment_events=100)
    first = EventReader(d)
    assert len(first.poll(limit=130)) == 130
    saved = Cursor(first.cursor.segment, first.cursor.doc_id)  # what a TUI would keep
    write(d, 100, start=250, segment_events=100)  # a resumed writer adds more
    resumed = EventReader(d, saved)
    assert seqs(resumed.poll()) == list(range(130, 350))
    assert seqs(first.poll()) == list(range(130, 350))


def test_reopened_writer_continues_seq_and_never_touches_sealed_segments(tmp_path: Path) -> None:
    d = tmp_path / "events"
    write(d, 150, segment_events=100)
    w = EventWriter(d, background=False, segment_events=100)
    assert w.seq == 150
    w.emit("status", status="resumed")
    w.close()
    assert seqs(read_all(d)) == list(range(151))
    assert segment_sizes(d) == [100, 51]

    # The last segment is exactly full: the next writer starts a new one.
    d2 = tmp_path / "full"
    write(d2, 200, segment_events=100)
    sealed = segment_path(d2, 1).read_bytes()
    write(d2, 5, start=200, segment_events=100)
    assert segment_path(d2, 1).read_bytes() == sealed
    assert segment_sizes(d2) == [100, 100, 5]
    assert seqs(read_all(d2)) == list(range(205))
    assert [e["step"] for e in read_all(d2)] == list(range(205))


def test_only_one_writer_per_queue(tmp_path: Path) -> None:
    d = tmp_path / "events"
    w = EventWriter(d)
    try:
        with pytest.raises(WriterBusy):
            EventWriter(d)
        w.emit("train", step=0)
    finally:
        w.close()
    with EventWriter(d) as again:  # released by close()
        again.emit("train", step=1)
    assert seqs(read_all(d)) == [0, 1]


def test_stale_tmp_files_are_ignored_by_readers_and_removed_by_writers(tmp_path: Path) -> None:
    d = tmp_path / "events"
    write(d, 120, segment_events=100)
    stale = [d / ".000001.json.k3j2h1.tmp", d / ".000002.json.zz.tmp"]
    stale[0].write_text('{"events": {"1": {"seq": 99')  # a flush cut short by kill -9
    stale[1].write_bytes(b"\0" * 64)
    reader = EventReader(d)
    assert seqs(reader.poll()) == list(range(120))
    assert list_segments(d) == [0, 1]
    with EventWriter(d, background=False, segment_events=100) as w:
        assert not any(p.exists() for p in stale)
        w.emit("train", step=120)
    assert seqs(reader.poll()) == [120]
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def test_files_are_not_world_writable(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        d = tmp_path / "events"
        write(d, 250, segment_events=100)
    finally:
        os.umask(old)
    for p in [d, *d.iterdir()]:
        assert p.stat().st_mode & 0o022 == 0, p


# -- across processes ------------------------------------------------------------------------------
WRITER = r"""
import sys, time
from pathlib import Path
from tuneterm.store.events import EventWriter
d, n, rate, seg = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
w = EventWriter(d, segment_events=seg)
start = time.time()
print("start", start, flush=True)
i = 0
while n == 0 or i < n:
    due = int((time.time() - start) * rate) if rate else i + 500
    while i < due and (n == 0 or i < n):
        t0 = time.time()
        w.emit("train", step=i, t0=t0, pad="x" * 40)
        if i % 50 == 0:
            print("emitted", i, t0, flush=True)
        i += 1
    if rate:
        time.sleep(0.001)
w.close()
print("done", i, flush=True)
"""

READER = r"""
import json, sys, time
from pathlib import Path
from tuneterm.store.events import EventReader
d, n, timeout = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
reader = EventReader(d)
expected, polls, reads, limits = 0, 0, 0, [None, 1, 17, 500, 2000, None]
reader.poll()
print("ready", flush=True)  # the test starts the writer only now
deadline = time.time() + timeout
while expected < n and time.time() < deadline:
    got = reader.poll(limit=limits[polls % len(limits)])
    for ev in got:
        if ev["seq"] != expected or ev["step"] != expected:
            print(json.dumps({"error": f"got seq {ev['seq']}, expected {expected}"}))
            sys.exit(1)
        expected += 1
    polls += 1
    reads += bool(got)
extra = reader.poll()
print(json.dumps({"seen": expected, "polls": polls, "reads": reads, "extra": len(extra)}))
"""


def _python(*args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", *args], text=True, **kw)


def test_reader_process_sees_every_event_once_in_order_from_fast_writer_process(
    tmp_path: Path,
) -> None:
    d = tmp_path / "events"
    n = 40_000
    reader = _python(READER, str(d), str(n), str(PATIENCE), stdout=subprocess.PIPE)
    assert reader.stdout is not None and reader.stdout.readline() == "ready\n"
    writer = _python(WRITER, str(d), str(n), "0", "500", stdout=subprocess.PIPE)
    w_out, _ = writer.communicate(timeout=PATIENCE)
    r_out, _ = reader.communicate(timeout=PATIENCE + 30)
    assert writer.returncode == 0, w_out
    assert reader.returncode == 0, r_out
    result = json.loads(r_out.strip().splitlines()[-1])
    assert result == {"seen": n, "polls": result["polls"], "reads": result["reads"], "extra": 0}
    # it really read while the writer wrote: the stream arrived in pieces, not all at the end
    assert result["reads"] >= 2, result
    assert len(list_segments(d)) == n // 500


def test_kill_9_loses_at_most_the_last_half_second_and_store_stays_usable(
    tmp_path: Path,
) -> None:
    for trial, delay in enumerate((1.3, 1.75)):
        d = tmp_path / f"events-{trial}"
        writer = _python(WRITER, str(d), "0", "2000", "300", stdout=subprocess.PIPE)
        assert writer.stdout is not None
        assert writer.stdout.readline().startswith("start")
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        t_kill = time.time()
        rest, _ = writer.communicate(timeout=10)
        assert writer.returncode == -signal.SIGKILL
        emitted = [line.split() for line in rest.splitlines() if line.startswith("emitted")]
        must_have = max(int(s) for _, s, t0 in emitted if float(t0) <= t_kill - 0.5)

        events = read_all(d)  # readable: no torn or half-written segment
        assert seqs(events) == list(range(len(events)))
        assert len(events) > must_have, (len(events), must_have)
        assert t_kill - events[-1]["t0"] <= 0.5

        # The kernel dropped the dead writer's lock: a new writer continues the sequence.
        w = EventWriter(d, background=False, segment_events=300)
        assert w.seq == len(events)
        w.emit("status", status="resumed")
        w.close()
        after = read_all(d)
        assert seqs(after) == list(range(len(events) + 1))
        assert after[-1]["kind"] == "status"
        assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
        assert (d / LOCK_FILE).exists()


def test_a_producer_faster_than_the_flusher_is_held_to_a_bounded_queue(tmp_path: Path) -> None:
    # No background flusher at all: emit() itself must write once MAX_PENDING events wait, so
    # memory stays bounded however fast the loop emits (bench/engine_rss.py measures the RSS).
    w = EventWriter(tmp_path / "events", background=False, fsync=False)
    for i in range(2 * MAX_PENDING + 5):
        w.emit("train", step=i)
        assert len(w._pending) < MAX_PENDING
    assert [e["step"] for e in read_all(tmp_path / "events")] == list(range(2 * MAX_PENDING))
    w.close()
    assert len(read_all(tmp_path / "events")) == 2 * MAX_PENDING + 5


# A regression found in review: a flush that fails (disk full) must not drop its batch.
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
