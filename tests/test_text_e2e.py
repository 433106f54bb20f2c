"""Text classification end to end: real `tuneterm run` engines fine-tuning the packaged MiniLM
on the generated topics set on the CPU, then show --json, predict --text, compare, the TUI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import Cli, kill_engines_under
from helpers.fake_store import new_app, pilot, screen_text, until

from tuneterm.store import RunStore

# 4 topics x 24 training texts, 6 steps per epoch: a few seconds of MiniLM on one thread. The
# embeddings and the first 3 of 6 layers are frozen (freeze.first_n), which halves the backward.
TEXT_RUN = """\
[run]
name = "text-full"
task = "text"

[data]
dataset = "topics"
per_class = 24
val_fraction = 0.1
test_fraction = 0.1

[train]
epochs = 1
batch_size = 16
lr = 0.0005
log_every = 2
threads = 1
metric = "val_f1"
layer_decay = 0.8

[freeze]
strategy = "first_n"
stages = 4

[text]
max_length = 32
"""


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, dict[str, Any]]]:
    """A fine-tune (top layers), then a LoRA student distilled from it with early stopping."""
    root = tmp_path_factory.mktemp("text")
    runs = root / "runs"
    runs.mkdir()
    cfg = root / "text.toml"
    cfg.write_text(TEXT_RUN)
    cli = Cli(runs)
    try:
        full = cli.json("run", str(cfg))
        lora = cli.json(
            "run",
            str(cfg),
            "--name",
            "text-lora",
            "--set",
            "lora.enabled=true",
            "--set",
            "freeze.strategy=none",
            "--set",
            "train.lr=0.005",  # adapters start from zero: a larger lr and more steps
            "--set",
            "train.epochs=3",
            "--set",
            f"distill.teacher=run:{full['id']}",
            "--set",
            "early_stop.enabled=true",
            "--set",
            "early_stop.metric=val_f1",
            "--set",
            "early_stop.mode=max",
        )
        yield cli, {"full": full, "lora": lora}
    finally:
        kill_engines_under(runs)


def test_fine_tune_completes_above_chance(text_runs: tuple[Cli, dict[str, Any]]) -> None:
    cli, runs = text_runs
    full = runs["full"]
    assert full["status"] == "completed", full.get("error")
    assert full["task"] == "text" and full["model"] == "minilm"
    final = full["meta"]["final"]
    assert final["test_acc"] > 0.5 and final["test_f1"] > 0.5  # chance is 0.25 (4 topics)
    assert sorted(final["report"]) == ["food", "sports", "tech", "weather"]
    assert set(final["report"]["food"]) == {"precision", "recall", "f1", "support"}
    assert full["best"]["metric"] == "val_f1" and "val_f1" in full["best"]
    assert full["meta"]["versions"]["transformers"]
    vals = [
        json.loads(line)
        for line in cli("events", full["id"], "--kind", "val", "--json").stdout.splitlines()
    ]
    assert len(vals) == 1 and 0.0 <= vals[0]["val_f1"] <= 1.0 and "val_acc" in vals[0]
    shown = cli.json("show", full["id"])
    assert shown["final"]["test_f1"] == final["test_f1"]
    assert shown["checkpoints"] == ["best.pt", "last.pt"]


def test_lora_student_distilled_with_early_stopping(
    text_runs: tuple[Cli, dict[str, Any]],
) -> None:
    _cli, runs = text_runs
    lora = runs["lora"]
    assert lora["status"] == "completed", lora.get("error")
    tech = lora["meta"]["techniques"]
    assert tech["lora"]["adapter_params"] > 0 and tech["distill"]["teacher_params"] > 2e7
    assert "early_stop" in tech
    assert lora["params"]["trainable_pct"] < 5  # adapters + head only
    assert lora["meta"]["final"]["test_acc"] > 0.4  # chance is 0.25


def test_predict_text_labels_scores_and_compare(
    text_runs: tuple[Cli, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneterm.cli import main

    cli, runs = text_runs
    full, lora = runs["full"]["id"], runs["lora"]["id"]
    argv = ["--runs-dir", str(cli.runs)]
    # A LoRA checkpoint: its adapters and head are loaded onto the packaged base model.
    texts = ["the striker scored a goal in the match", "thunder and rain in the forecast"]
    args = [*argv, "predict", lora, "--text", texts[0], "--text", texts[1], "--top-k", "2"]
    assert main([*args, "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["text"] for p in preds] == texts
    for p in preds:
        assert p["label"] in ("food", "sports", "tech", "weather") and len(p["top"]) == 2
        assert 0.0 < p["top"][1]["score"] <= p["score"] <= 1.0
    assert main([*argv, "predict", full, "--text", "a spicy garlic soup recipe"]) == 0
    label, score, text = capsys.readouterr().out.splitlines()[0].split("\t")[:3]
    assert label in ("food", "sports", "tech", "weather") and 0 < float(score) <= 1
    assert text == "a spicy garlic soup recipe"
    assert main([*argv, "compare", full, lora, "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert set(compared["metrics"]["final.test_f1"]) == {full, lora}
    assert all(v is not None for v in compared["metrics"]["best.val_f1"].values())
    assert compared["config_diff"]["lora.enabled"] == {full: False, lora: True}


def test_predict_and_run_errors(text_runs: tuple[Cli, dict[str, Any]], tmp_path: Path) -> None:
    cli, runs = text_runs
    proc = cli("predict", runs["full"]["id"], check=2)
    assert "--text" in proc.stderr
    cfg = tmp_path / "hub.toml"
    cfg.write_text(TEXT_RUN.replace("max_length = 32", 'model = "someorg/not-cached"'))
    before = set(cli.runs.iterdir())
    proc = cli("run", str(cfg), check=2)
    assert 'text.model = "someorg/not-cached": not in the Hugging Face cache' in proc.stderr
    assert set(cli.runs.iterdir()) == before  # nothing created


@pilot
async def test_tui_plots_f1_for_a_text_run(text_runs: tuple[Cli, dict[str, Any]]) -> None:
    from tuneterm.tui.widgets.curve import CurvePlot
    from tuneterm.tui.widgets.runtable import RunTable

    cli, runs = text_runs
    app = new_app(RunStore(cli.runs))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.screen.query(RunTable)) == 1, what="run list")
        table = app.screen.query_one(RunTable)
        await until(pilot, lambda: table.row_count == 2, what="2 rows")
        table.move_cursor(row=[table.infos[i].name for i in table.order].index("text-full"))
        rid = runs["full"]["id"]
        await until(pilot, lambda: rid in app.histories and len(app.histories[rid].val) == 1)
        await pilot.press("2")
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        await until(pilot, lambda: [ln.label for ln in acc.chart.lines] == ["val acc", "val F1"])
        await pilot.press("7")
        # the spec labels macro-F1 "F1"; its format is .4f
        await until(pilot, lambda: " F1 0." in screen_text(app), what="test pane")
