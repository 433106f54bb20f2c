"""End to end: techniques switched on in a config reach a real engine run launched by the CLI,
and `tuneterm lr-find` runs a real range test."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli import TINY, Cli

TECHNIQUES = """
[freeze]
strategy = "linear_probe"

[ema]
enabled = true
decay = 0.9
"""


def test_run_with_techniques_completes_and_records_them(cli: Cli, tmp_path: Path) -> None:
    text = TINY.replace("epochs = 4", "epochs = 3").replace(
        "image_size = 16", "image_size = 16\nfraction = 0.5"
    )
    text = text.replace("lr = 0.003", "lr = 0.01\nlabel_smoothing = 0.1") + TECHNIQUES
    path = tmp_path / "tech.toml"
    path.write_text(text)
    data = json.loads(cli("run", str(path), "--json", check=0).stdout)
    assert data["status"] == "completed"
    assert data["final"]["test_acc"] > 0.4  # a linear probe on a random-init backbone, 3 classes
    meta = data["meta"]
    tech = meta["techniques"]
    assert tech["freeze"]["strategy"] == "linear_probe" and tech["freeze"]["frozen_stages"] == 5
    assert tech["ema"] == {"enabled": True, "decay": 0.9, "keep": True}
    params = meta["params"]
    assert params["trainable"] == 512 * 3 + 3  # the new linear head only
    assert 0 < params["trainable_pct"] < 0.1
    counts = meta["data"]
    assert counts["train"] == 120  # 40 per class after keeping half the training pool
    assert counts["removed_fraction"] > 0
    removed = sum(v for k, v in counts.items() if k.startswith("removed_"))
    assert counts["train"] + counts["val"] + counts["test"] + removed == counts["images"]
    config = (Path(data["path"]) / "config.toml").read_text()
    assert "label_smoothing = 0.1" in config and "fraction = 0.5" in config


def test_lr_find_cli_prints_a_suggestion(cli: Cli, tiny_config: Path) -> None:
    args = ("lr-find", str(tiny_config), "--start", "1e-5", "--end", "0.1", "--steps", "15")
    out = cli(*args, check=0).stdout
    assert "LR range test" in out and "suggested lr:" in out
    assert "\x1b[" not in out  # piped (a subprocess's stdout): no colour codes
    res = json.loads(cli(*args, "--json", check=0).stdout)
    assert len(res["lrs"]) == 15  # no early stop on a range that does not diverge
    assert res["lrs"] == sorted(res["lrs"]) and 1e-5 <= res["suggestion"] <= 0.1
    assert list(cli.runs.iterdir()) == []  # a range test creates no run


def test_lr_find_refuses_a_kind_without_a_range_test(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "det.toml"
    path.write_text('[run]\ntask = "detect"\n[data]\ndataset = "shapes-boxes"\n')
    err = cli("lr-find", str(path), check=2).stderr
    assert 'run.task = "detect": has no LR range test; lr-find runs classify configs' in err
    assert list(cli.runs.iterdir()) == []
