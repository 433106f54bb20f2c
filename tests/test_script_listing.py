"""`ls` and `sweep-best` for script runs: at 80 columns the BEST and EPOCH columns stay, the ids
shown shortened to the tails `show` accepts (piped output keeps them whole); a script sweep's column
filled from `--key={v}` and `--key {v}`; exit 1, not 2, while no run has a metric."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli import Cli
from helpers.scripts import PY, script, wait_status

from tuneterm.cli import listing
from tuneterm.cli.scripts import swept_args

SCRIPT_IDS = [
    "20261202-111448-hf_trainer_script-317e",
    "20261202-111449-hf_trainer_script-a0b2",
    "20261202-111449-hf_trainer_script-c9d1",
]


def rows() -> list[dict[str, str]]:
    return [
        {"id": i, "name": "hf-trainer-script", "status": "completed", "model": "hf_trainer",
         "data": "script", "epoch": "2/0", "best": "val acc 0.9367", "loss": "0.3037",
         "elapsed": "0:16", "device": "cpu"}
        for i in SCRIPT_IDS
    ]  # fmt: skip


def test_ls_at_80_columns_keeps_best_with_ids_shortened_to_unique_prefixes() -> None:
    at_80, shown = listing.fit_rows(rows(), 80)  # short ids: room for the name and EPOCH
    assert at_80.keys == ("id", "name", "status", "model", "epoch", "best", "elapsed")
    assert [r["id"] for r in shown] == ["317e", "a0b2", "c9d1"]
    assert sum(at_80.widths.values()) + 2 * (len(at_80.keys) - 1) <= 80
    assert "best" not in listing.layout(rows(), 60).keys  # whole 38-character ids: no room
    fit, shown = listing.fit_rows(rows(), 60)
    assert "best" in fit.keys and "status" in fit.keys
    assert sum(fit.widths.values()) + 2 * (len(fit.keys) - 1) <= 60
    ids = [r["id"] for r in shown]
    assert ids == ["317e", "a0b2", "c9d1"]
    assert listing.short_ids(["20261202-111448-a-317e", "20261202-111449-b-317e"]) == {
        "20261202-111448-a-317e": "a-317e",
        "20261202-111449-b-317e": "b-317e",
    }
    assert [r["best"] for r in shown] == ["val acc 0.9367"] * 3
    assert all(line.split("\t")[0] in SCRIPT_IDS for line in listing.plain_lines(rows())[1:])


def test_swept_arguments_found_in_both_spellings() -> None:
    cmd = ["python", "train.py", "--learning_rate={lr}", "--batch-size", "{bs}", "--x", "1"]
    assert swept_args(cmd, ["lr", "bs"]) == {"lr": "learning_rate", "bs": "batch_size"}


def test_sweep_best_over_a_script_sweep_fills_the_column_and_exits_1_without_a_metric(
    cli: Cli, runs_dir: Path, tmp_path: Path
) -> None:
    quiet = tmp_path / "quiet.py"
    quiet.write_text("import sys\nprint('no metrics here', sys.argv[1:])\n")
    proc = cli("sweep", "--now", "--name", "q", "--grid", "lr=0.1,0.2", "--json", "--",
               PY, str(quiet), "--learning_rate={lr}", check=0)  # fmt: skip
    ids = [r["id"] for r in json.loads(proc.stdout)["runs"]]
    for run_id in ids:
        wait_status(runs_dir, run_id, "completed", 60)
    tails = listing.short_ids(ids)
    assert [cli.json("show", tails[i])["id"] for i in ids] == ids  # what ls shows is accepted
    none_yet = cli("sweep-best", "q", check=None)
    assert none_yet.returncode == 1, none_yet.stderr
    assert "--metric" not in none_yet.stderr and "has a metric yet" in none_yet.stdout
    table = json.loads(cli("sweep-best", "q", "--json", check=None).stdout)
    assert table["keys"] == ["args.learning_rate"] and table["best"] is None
    assert sorted(r["params"]["args.learning_rate"] for r in table["runs"]) == [0.1, 0.2]
    proc = cli("sweep", "--now", "--name", "g", "--grid", "steps=3,6", "--json", "--",
               PY, script("api_loop.py"), "--steps", "{steps}", check=0)  # fmt: skip
    for run_id in [r["id"] for r in json.loads(proc.stdout)["runs"]]:
        wait_status(runs_dir, run_id, "completed", 60)
    best = cli.json("sweep-best", "g")
    assert best["best"]["params"] == {"args.steps": 6} and best["metric"] == "val_err"
