"""The speed switches (issue 6): config, persistent DataLoader workers, the input-bound hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tuneterm.config import ConfigError, RunConfig, loads
from tuneterm.engine.kinds.classify.data import Split, batches
from tuneterm.engine.trainer import input_hint
from tuneterm.tui.history import RunHistory
from tuneterm.tui.widgets.panes import speed_summary


def test_speed_section_defaults_and_errors_name_the_field() -> None:
    cfg = RunConfig()
    assert cfg.speed.channels_last and cfg.speed.fused_optimizer and cfg.speed.compile == "off"
    with pytest.raises(ConfigError) as err:
        loads('[speed]\ncompile = "fast"\n')
    assert 'speed.compile = "fast"' in str(err.value)
    with pytest.raises(ConfigError) as err:
        loads("[data]\ncache_gb = -1\n")
    assert "data.cache_gb = -1" in str(err.value)
    assert cfg.speed.async_checkpoint == "auto"
    with pytest.raises(ConfigError) as err:  # detectors' batch shapes vary: not compiled
        loads(
            '[run]\ntask = "detect"\n[data]\ndataset = "shapes-boxes"\n'
            '[speed]\ncompile = "default"\n'
        )
    assert 'speed.compile = "default"' in str(err.value) and "detect" in str(err.value)


def _image_split(tmp_path: Path, n: int) -> Split:
    files = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), i * 10, dtype=np.uint8)).save(path)
        files.append(path)
    return Split(torch.arange(n) % 3, None, files)


def _worker_pids(split: Split) -> list[int]:
    loader = split.loader[2]
    return sorted(w.pid for w in loader._iterator._workers)


def test_persistent_workers_live_across_epochs_and_follow_each_epochs_order(
    tmp_path: Path,
) -> None:
    split = _image_split(tmp_path, 12)
    kw = {"shuffle_seed": 3, "workers": 1, "persistent": True}
    first = [y.tolist() for _, y in batches(split, 4, 8, epoch=0, **kw)]  # type: ignore[arg-type]
    pids = _worker_pids(split)
    second = [y.tolist() for _, y in batches(split, 4, 8, epoch=1, **kw)]  # type: ignore[arg-type]
    assert _worker_pids(split) == pids  # the same worker processes served epoch 2
    # Each epoch's batches are that epoch's order, exactly as the in-process path yields them.
    for epoch, got in ((0, first), (1, second)):
        plain = [y.tolist() for _, y in batches(split, 4, 8, shuffle_seed=3, epoch=epoch)]
        assert got == plain
    assert first != second
    # A resumed epoch starts mid-way through the same persistent loader.
    tail = [y.tolist() for _, y in batches(split, 4, 8, epoch=1, start_batch=2, **kw)]  # type: ignore[arg-type]
    assert tail == second[2:] and _worker_pids(split) == pids


def test_input_hint_after_three_waiting_intervals_names_what_to_change() -> None:
    cfg = loads('[data]\nworkers = 2\naugment = "randaugment"\n')
    streak, msg = 0, None
    for wait in (0.6, 0.7, 0.1, 0.5, 0.5):  # a short streak, broken, then a new one
        streak, msg = input_hint(wait, streak, cfg.data, streamed=True, workers=2)
        assert msg is None
    streak, msg = input_hint(0.62, streak, cfg.data, streamed=True, workers=2)
    assert msg is not None and msg.startswith("input-bound: 62% of step time waiting for data")
    assert "data.workers (now 2)" in msg and "data.cache_gb" in msg and "randaugment" in msg
    streak, msg = input_hint(0.62, streak, cfg.data, streamed=True, workers=2)
    assert msg is None  # said once per streak


def test_speed_pane_flags_an_input_bound_run() -> None:
    h = RunHistory()
    h.add(
        {"seq": i, "t": float(i), "kind": "train", "step": i, "loss": 1.0, "examples_s": 100.0,
         "data_wait": 0.6 if i > 2 else 0.05}
        for i in range(1, 5)
    )  # fmt: skip
    text = speed_summary(h).plain
    assert "input-bound: 60% of step time waiting for data" in text
    assert "data.workers" in text
    h2 = RunHistory()
    h2.add([{"seq": 1, "t": 1.0, "kind": "train", "step": 1, "loss": 1.0, "examples_s": 100.0,
             "data_wait": 0.05}])  # fmt: skip
    assert "input-bound" not in speed_summary(h2).plain
