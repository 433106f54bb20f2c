"""Sweeps: grid and random points, all-or-nothing validation, groups and the best run."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from helpers.cli import TINY, Cli

from tuneterm.config import ConfigError, parse_toml
from tuneterm.runs import sweep
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunStore


def test_grid_crosses_values_and_reads_them_like_set() -> None:
    grid = [
        sweep.parse_values("train.lr=1e-3,3e-4", "--grid"),
        sweep.parse_values('data.classes=["0","1"],["1","2"]', "--grid"),
    ]
    pts = sweep.points(grid, [])
    assert [p.overrides for p in pts][1] == ["train.lr=1e-3", 'data.classes=["1","2"]']
    built = sweep.build(parse_toml(TINY), pts, "tiny.toml")
    assert [p.params for p in built] == [
        {"train.lr": 1e-3, "data.classes": ["0", "1"]},
        {"train.lr": 1e-3, "data.classes": ["1", "2"]},
        {"train.lr": 3e-4, "data.classes": ["0", "1"]},
        {"train.lr": 3e-4, "data.classes": ["1", "2"]},
    ]
    assert built[3].cfg is not None and built[3].cfg.train.lr == 3e-4


def test_bad_values_name_field_value_and_point() -> None:
    pts = sweep.points([sweep.parse_values("train.lr=1e-3,-1", "--grid")], [])
    with pytest.raises(ConfigError) as err:
        sweep.build(parse_toml(TINY), pts, "tiny.toml")
    assert str(err.value) == (
        "tiny.toml: train.lr = -1: must be > 0.0 [sweep point 2 of 2: train.lr=-1]"
    )
    with pytest.raises(ConfigError, match=r"model.freeze = \"none,linear\": unknown config key"):
        sweep.parse_values("model.freeze=none,linear", "--grid")
    with pytest.raises(ConfigError, match=r"did you mean freeze\.strategy"):
        sweep.parse_values("model.freeze=none", "--grid")
    with pytest.raises(ConfigError, match=re.escape('train.lr = "1:0:log": needs finite LO <= HI')):
        sweep.parse_range("train.lr=1:0:log")
    with pytest.raises(ConfigError, match="needs --random"):
        sweep.points([], [sweep.parse_range("train.lr=1e-4:1e-2:log")])


def test_random_points_reproducible_and_log_uniform() -> None:
    axes = [sweep.parse_range("train.lr=1e-5:1e-2:log"), sweep.parse_range("train.epochs=2:6:int")]
    choice = [sweep.parse_values("freeze.strategy=none,linear_probe", "--choice")]
    one = sweep.points(choice, axes, random_n=400, seed=3)
    assert [p.overrides for p in one] == [p.overrides for p in sweep.points(choice, axes, 400, 3)]
    assert [p.overrides for p in one] != [p.overrides for p in sweep.points(choice, axes, 400, 4)]
    values = [dict(o.split("=") for o in p.overrides) for p in one]
    lrs = [float(v["train.lr"]) for v in values]
    assert all(1e-5 <= lr <= 1e-2 for lr in lrs)
    # log-uniform: about half below the geometric middle (uniform would put ~3% there)
    below = sum(lr < math.sqrt(1e-5 * 1e-2) for lr in lrs) / len(lrs)
    assert 0.4 < below < 0.6
    epochs = {int(v["train.epochs"]) for v in values}
    assert epochs == {2, 3, 4, 5, 6}
    assert {v["freeze.strategy"] for v in values} == {"none", "linear_probe"}
    built = sweep.build(parse_toml(TINY), one[:5], "tiny.toml")
    assert all(p.cfg is not None and 2 <= p.cfg.train.epochs <= 6 for p in built)


def test_cli_bad_grid_key_exits_2_and_creates_nothing(
    cli: Cli, tiny_config: Path, runs_dir: Path
) -> None:
    proc = cli(
        "sweep", str(tiny_config), "--grid", "train.lr=1e-3,3e-4",
        "--grid", "model.freeze=none,linear", "--json", check=2,
    )  # fmt: skip
    assert "model.freeze" in proc.stderr and "freeze.strategy" in proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 2
    proc = cli("sweep", str(tiny_config), "--grid", "train.lr=1e-3,0", check=2)
    assert "train.lr = 0: must be > 0.0 [sweep point 2 of 2: train.lr=0]" in proc.stderr
    assert list(runs_dir.iterdir()) == []  # no run, no queue, no sweep record


def test_group_table_sorts_by_metric_with_swept_keys(runs_dir: Path) -> None:
    from tuneterm.config import loads
    from tuneterm.runs import runqueue

    store = RunStore(runs_dir)
    pts = sweep.points([sweep.parse_values("train.lr=0.1,0.01,0.001", "--grid")], [])
    sweep.build(parse_toml(TINY), pts, "t")
    made = [(runqueue.enqueue(store, c, n), p) for (c, n), p in zip(
        sweep.prepare("grp", pts), pts, strict=True)]  # fmt: skip
    sweep.record(store, "grp", ["train.lr"], made)
    runqueue.enqueue(store, loads(TINY), "outsider")
    for (info, _), acc in zip(made, (0.5, 0.9, None), strict=True):
        meta = load_meta(info.path / "meta.json")
        meta.status = "completed" if acc else "failed"
        if acc:
            meta.best = {"metric": "val_acc", "value": acc, "val_acc": acc, "val_loss": 1 - acc}
        save_meta(info.path / "meta.json", meta)
    table = sweep.group_table(store, "grp")
    assert table.metric == "val_acc" and table.keys == ["train.lr"]
    assert [r.params["train.lr"] for r in table.rows] == [0.01, 0.1, 0.001]
    assert table.best is not None and table.best.info.name == "grp-2"
    by_loss = sweep.group_table(store, "grp", "val_loss")
    assert [r.value for r in by_loss.rows] == [pytest.approx(0.1), pytest.approx(0.5), None]
    assert sweep.groups(store.list()) == ["grp"]
    with pytest.raises(ConfigError, match="no runs carry the tag sweep:nope"):
        sweep.group_table(store, "nope")
    with pytest.raises(ConfigError, match="a sweep of that name exists"):
        sweep.check_group("grp", store)
    with pytest.raises(ConfigError, match=re.escape('--name = "../x"')):
        sweep.check_group("../x", store)
