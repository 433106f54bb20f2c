"""The fake store the TUI tests build (tests/helpers/fake_store.py) reads back as real runs."""

from __future__ import annotations

from pathlib import Path

from helpers.fake_store import make_store


def test_make_store_builds_readable_runs(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    runs = store.list()
    assert sorted(r.status for r in runs) == ["completed", "failed", "stopped"]
    events = store.events(runs[0].id).poll()
    assert any(e["kind"] == "train" for e in events)
