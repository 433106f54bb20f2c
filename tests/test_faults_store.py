"""Store damage: a run file truncated, hand-edited, or from a newer tuneterm. That run reads
`unreadable` with the reason (CLI and TUI), every other run loads, and nothing is rewritten."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import Cli
from helpers.fake_store import make_run, new_app, pilot, until

from tuneterm.store.runs import RunStore


def _cut(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _edit_meta(**fields: object) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        meta = json.loads((run / "meta.json").read_text())
        meta.update(fields)
        (run / "meta.json").write_text(json.dumps(meta))

    return edit


def _segment(run: Path) -> Path:
    return run / "events" / "000000.json"


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "meta-truncated": (lambda r: _cut(r / "meta.json"), "meta.json is damaged"),
    "meta-hand-edited": (_edit_meta(epoch="many"), "meta.json has bad fields"),
    "meta-not-an-object": (lambda r: (r / "meta.json").write_text("[1, 2]"), "not a JSON object"),
    "meta-newer": (_edit_meta(format=99), "newer than this tuneterm reads"),
    "meta-missing": (lambda r: (r / "meta.json").unlink(), "meta.json is missing"),
    "events-truncated": (lambda r: _cut(_segment(r)), "events/000000.json is damaged"),
    "events-hand-edited": (
        lambda r: _segment(r).write_text(_segment(r).read_text().replace('"seq":3,', '"seq":3,,')),
        "events/000000.json is damaged",
    ),
    "events-newer": (
        lambda r: _segment(r).write_text(json.dumps({"format": 2, "events_v2": {"1": {}}})),
        "not an event segment this tuneterm reads",
    ),
}


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[RunStore, dict[str, str], list[str]]:
    """Two good runs plus one damaged run per kind of damage: {run id: expected reason}."""
    store = RunStore(tmp_path / "damaged-store")
    good = [make_run(store, "good-a").id, make_run(store, "good-b", "stopped").id]
    expected = {}
    for name, (damage, reason) in DAMAGE.items():
        info = make_run(store, name)
        damage(info.path)
        expected[info.id] = reason
    return store, expected, good


def test_cli_reads_damaged_runs_as_unreadable_and_rewrites_nothing(
    damaged: tuple[RunStore, dict[str, str], list[str]], cli: Cli
) -> None:
    store, expected, good = damaged
    cli.runs = store.root
    before = _digest(store.root)
    listed = {r["id"]: r for r in cli.json("ls")}
    assert set(listed) == set(expected) | set(good)  # every run loads
    assert listed[good[0]]["status"] == "completed" and listed[good[1]]["status"] == "stopped"
    for run_id, reason in expected.items():
        if run_id.split("-", 2)[2].startswith("meta"):  # ls checks meta.json only (cheap)
            assert listed[run_id]["status"] == "unreadable" and reason in listed[run_id]["reason"]
        shown = cli.json("show", run_id)  # show also reads every event segment
        assert shown["status"] == "unreadable" and reason in shown["reason"], shown
        assert cli("resume", run_id).returncode == 3  # never writes into a damaged run
        if "events" in run_id:
            proc = cli("events", run_id)
            assert proc.returncode == 1 and reason in proc.stderr, proc.stderr
    for run_id in good:
        assert len(cli("events", run_id, check=0).stdout.splitlines()) > 10
    assert _digest(store.root) == before  # nothing was overwritten


@pilot
async def test_tui_loads_every_other_run_and_marks_damaged_ones(
    damaged: tuple[RunStore, dict[str, str], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuneterm.tui.widgets.runtable import RunTable

    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    store, expected, good = damaged
    before = _digest(store.root)
    app = new_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        table = None

        def listed() -> bool:
            nonlocal table
            try:
                table = app.screen.query_one(RunTable)
            except Exception:
                return False
            return len(table.infos) == len(expected) + len(good)

        await until(pilot, listed, what="every run listed")
        # Mark every run (space marks and moves down): marked runs stay watched, so each one's
        # events are read however slowly the poller thread gets scheduled.
        for _ in range(len(expected) + len(good)):
            await pilot.press("space")
            await pilot.pause(0.05)

        def all_marked() -> bool:
            assert table is not None
            return all(table.infos[i].status == "unreadable" for i in expected)

        await until(pilot, all_marked, what="damaged runs read unreadable")
        assert table is not None
        for run_id, reason in expected.items():
            assert reason in table.infos[run_id].reason
        for run_id in good:
            assert table.infos[run_id].status in ("completed", "stopped")
            await until(pilot, lambda r=run_id: len(app.history(r).train) > 0, what=run_id)
    assert _digest(store.root) == before
