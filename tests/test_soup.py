"""Model soups through the CLI (`tuneterm soup`): three tiny parent runs, made once for the
module (one start, three learning rates, one epoch), then the soup of them, its predictions,
and the refusals that must come before anything is created."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import Cli, kill_engines_under, wait_for
from helpers.configs import tiny_toml
from PIL import Image

from tuneterm.runs.predict import PredictInput, predict
from tuneterm.store.files import atomic_write_text
from tuneterm.store.runs import RunStore


@dataclass
class Kitchen:
    cli: Cli
    store: RunStore
    parents: list[str]
    soup: dict[str, Any]  # `tuneterm soup --json`: the finished soup's detail


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kitchen]:
    root = tmp_path_factory.mktemp("soup")
    runs = root / "runs"
    runs.mkdir()
    config = root / "tiny.toml"
    config.write_text(tiny_toml(per_class=10, epochs=1))
    cli, store = Cli(runs), RunStore(runs)
    try:
        parents = [
            cli("run", str(config), "--set", f"train.lr={lr}", "--detach", check=0).stdout.split()[
                0
            ]
            for lr in (0.003, 0.002, 0.001)
        ]
        wait_for(
            lambda: all(
                store.info(p).status not in ("created", "starting", "running") for p in parents
            ),
            timeout=300,
            every=0.5,
        )
        soup = json.loads(cli("soup", *parents, "--json", check=0).stdout)
        yield Kitchen(cli, store, parents, soup)
    finally:
        kill_engines_under(runs)


def test_a_soup_of_three_runs_completes_and_predicts(kitchen: Kitchen, tmp_path: Path) -> None:
    soup = kitchen.soup
    assert soup["status"] == "completed", soup
    meta = kitchen.store.info(soup["id"]).meta
    assert meta is not None and meta.task == "soup"
    assert meta.parents == kitchen.parents
    assert meta.final["test_acc"] > 0 and meta.best["metric"] == "val_acc"
    listed = {r["id"]: r for r in kitchen.cli.json("ls")}
    assert listed[soup["id"]]["task"] == "soup"
    image = tmp_path / "x.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(image)
    out = predict(kitchen.store, soup["id"], PredictInput(images=[image]))  # what the CLI prints
    (pred,) = out["predictions"]
    assert {p["class"] for p in pred["top_k"]} <= {"0", "1", "2"}


def test_greedy_never_lowers_the_validation_metric(kitchen: Kitchen) -> None:
    own = {p: kitchen.store.info(p).meta.best["value"] for p in kitchen.parents}  # type: ignore[union-attr]
    meta = kitchen.store.info(kitchen.soup["id"]).meta
    assert meta is not None
    soup = meta.techniques["soup"]
    tried = soup["tried"]
    assert tried[0]["run"] == soup["members"][0] == max(own, key=own.__getitem__)
    score = tried[0]["score"]
    for step in tried[1:]:  # kept exactly when the soup's val_acc does not get worse
        assert step["kept"] == (step["score"] >= score), tried
        score = step["score"] if step["kept"] else score
    assert meta.best["value"] == pytest.approx(score)
    assert meta.best["value"] >= max(own.values())


def _copy(store: RunStore, run_id: str, new_id: str, **meta_fields: Any) -> str:
    """A finished run's folder under another id (a run made alike), meta.json fields changed."""
    shutil.copytree(store.run_dir(run_id), store.root / new_id)
    path = store.run_dir(new_id) / "meta.json"
    meta = {**json.loads(path.read_text()), "id": new_id, **meta_fields}
    atomic_write_text(path, json.dumps(meta))
    return new_id


def test_incompatible_runs_are_refused_and_nothing_is_made(kitchen: Kitchen) -> None:
    store, cli = kitchen.store, kitchen.cli
    a, b, _ = kitchen.parents
    # A run of another start: the same folder, its recorded starting weights not the same.
    other = _copy(store, b, "20261202-000000-resnet18-aaaa", init_hash="0" * 16)
    # A run of other classes.
    classes = _copy(store, b, "20261202-000000-resnet18-bbbb")
    path = store.config_path(classes)
    path.write_text(path.read_text().replace('classes = ["0", "1", "2"]', 'classes = ["0", "1"]'))
    before = sorted(p.name for p in store.root.iterdir())
    for args, named, says in (
        ((a, other), other, "starting weights"),
        ((a, classes), classes, "data.classes"),
        ((a, kitchen.soup["id"]), kitchen.soup["id"], "not an ingredient"),
        ((a,), "", "at least two"),
    ):
        proc = cli("soup", *args, check=2)
        assert named in proc.stderr and says in proc.stderr, proc.stderr
    proc = cli("soup", a, b, "--metric", "val_f1", check=2)
    assert "--metric" in proc.stderr
    assert sorted(p.name for p in store.root.iterdir()) == before
    for made in (other, classes):
        shutil.rmtree(store.run_dir(made))
