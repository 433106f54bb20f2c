"""The event vocabulary (store/eventtypes.py): user metrics named like the store's own fields
keep the store readable and are kept under `user_<name>`, through print and through
`tuneterm.log` in real script runs; old stores' field names read as today's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import Cli
from helpers.fake_store import make_run
from helpers.scripts import PY, launch, script, wait_status

from tuneterm.health import RunHealth
from tuneterm.store.events import EventWriter, last_event, read_all
from tuneterm.store.eventtypes import EVENT_TYPES, RESERVED, user_metrics, user_name
from tuneterm.store.runs import RunStore
from tuneterm.tui.history import RunHistory

PRINTED = ("seq", "t", "kind", "off", "user_seq")
LOGGED = ("seq", "t", "kind", "off", "step", "epoch", "user_seq")


def test_every_reserved_name_is_covered_by_the_script() -> None:
    # the script feeds every reserved name: through log() all, through print all but the two
    # a printed line reads as its location
    assert set(LOGGED) - {"user_seq"} == RESERVED
    assert set(PRINTED) | {"step", "epoch"} == set(LOGGED)


def test_the_rule_keeps_user_names_apart_from_the_stores_and_from_each_other() -> None:
    assert [user_name(n) for n in ("seq", "t", "kind", "off", "step", "epoch")] == [
        "user_seq", "user_t", "user_kind", "user_off", "user_step", "user_epoch"
    ]  # fmt: skip
    assert user_name("user_seq") == "user_user_seq"
    assert user_name("user_loss") == "user_loss" and user_name("val_acc") == "val_acc"
    names = ["seq", "user_seq", "user_user_seq", "val_acc", "T", "Seq"]
    assert len(set(user_metrics(dict.fromkeys(names, 1.0)))) == len(names)


def test_the_writer_refuses_its_own_fields(tmp_path: Path) -> None:
    with EventWriter(tmp_path / "events", background=False) as w:
        for name in ("seq", "t", "kind"):
            with pytest.raises(ValueError, match=name):
                w.emit("val", **{name: 3.0})
        w.emit("val", step=1, epoch=1, user_seq=3.0)
    (event,) = read_all(tmp_path / "events")
    assert event["seq"] == 0 and event["kind"] == "val" and event["user_seq"] == 3.0


def _check_run(cli: Cli, runs_dir: Path, run_id: str, names: tuple[str, ...]) -> None:
    wait_status(runs_dir, run_id, "completed", 90)
    proc = cli("events", run_id, "--json", check=0)
    evs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert evs == read_all(runs_dir / run_id / "events")
    assert [e["seq"] for e in evs] == list(range(len(evs)))  # the envelope is the writer's
    assert all(e["kind"] in EVENT_TYPES and isinstance(e["t"], float) for e in evs)
    assert all(e["t"] > 1e9 for e in evs)
    vals = [e for e in evs if e["kind"] == "val"]
    trains = [e for e in evs if e["kind"] == "train"]
    assert [e["step"] for e in vals] == [1, 2, 3] == [e["step"] for e in trains]
    for step, e in zip((1, 2, 3), vals, strict=True):
        kept = {k: v for k, v in e.items() if k.startswith("user_")}
        assert kept == {user_name(n): pytest.approx(step + k / 10) for k, n in enumerate(names)}
        assert isinstance(e["epoch"], float) and not e["epoch"] % 1  # not a user's 1.4
    assert all(t["loss"] == 0.45 and set(t) <= {"seq", "t", "kind", "step", "epoch", "loss",
                                                 "off"} for t in trains)  # fmt: skip
    info = RunStore(runs_dir).info(run_id)
    assert info.status == "completed" and info.meta is not None
    spec = [m["name"] for m in info.meta.metrics["val"]]
    assert spec == [user_name(n) for n in names]
    shown = json.loads(cli("show", run_id, "--json", check=0).stdout)
    assert shown["status"] == "completed"


def test_reserved_names_printed_by_a_script(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("reserved_names.py"), "print")
    _check_run(cli, runs_dir, run_id, PRINTED)


def test_reserved_names_logged_by_a_script(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("reserved_names.py"), "log")
    _check_run(cli, runs_dir, run_id, LOGGED)
    meta = RunStore(runs_dir).info(run_id).meta
    assert meta is not None and meta.metrics["best"] == "user_seq"  # define_metric("seq")
    assert meta.best["metric"] == "user_seq" and meta.best["value"] == pytest.approx(1.0)
    offs = [e["off"] for e in read_all(runs_dir / run_id / "events") if "off" in e]
    assert offs == sorted(offs) and all(isinstance(o, int) for o in offs)


def test_an_old_stores_img_s_reads_as_examples_s(cli: Cli, runs_dir: Path) -> None:
    old = make_run(RunStore(runs_dir), "old", steps=12, epochs=3, speed_field="img_s")
    raw = json.loads((old.path / "events" / "000000.json").read_text())["events"]
    trains = [e for e in raw.values() if e["kind"] == "train"]
    assert trains and all("img_s" in e and "examples_s" not in e for e in trains)
    speeds = [28.0 + step % 5 for step in range(1, 13)]

    proc = cli("events", old.id, "--kind", "train", "--json", check=0)
    shown = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["examples_s"] for e in shown] == speeds and "img_s" not in proc.stdout
    evs = read_all(old.path / "events")
    last = last_event(old.path / "events", "train")
    assert last is not None and last["examples_s"] == speeds[-1]
    history = RunHistory()
    history.add(evs)
    assert history.train.np("examples_s").tolist() == speeds
    health = RunHealth()
    health.feed(evs)
    assert list(health.speeds) == speeds


def test_the_history_reads_every_kind_and_no_location_field_is_a_curve() -> None:
    t = 1_800_000_000.0
    evs = [
        {"seq": 0, "t": t, "kind": "status", "status": "running"},
        {"seq": 1, "t": t, "kind": "data", "train": 60, "val": 15},
        {"seq": 2, "t": t, "kind": "train", "step": 1, "epoch": 1, "loss": 0.5, "off": 90},
        {"seq": 3, "t": t, "kind": "val", "step": 1, "epoch": 1.0, "off": 120, "user_seq": 3.0},
        {"seq": 4, "t": t, "kind": "unfreeze", "epoch": 2, "frozen_stages": 1, "trainable": 9},
        {"seq": 5, "t": t, "kind": "early_stop", "epoch": 2, "metric": "val_acc", "best": 0.5,
         "patience": 1},
        {"seq": 6, "t": t, "kind": "adapt", "method": "adabn", "target_images": 10},
        {"seq": 7, "t": t, "kind": "a_kind_of_tomorrow", "x": 1.0},
        {"seq": 8, "t": t, "kind": "log", "level": "out", "msg": "hello"},
    ]  # fmt: skip
    history = RunHistory()
    history.add(evs)
    assert history.events == len(evs) and history.last_seq == 8
    assert history.val.names == ("step", "epoch", "t", "user_seq")  # `off` is no curve
    assert [line.msg for line in history.logs] == ["running", "hello"]
    assert history.train.np("loss").tolist() == [0.5]
