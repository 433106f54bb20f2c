"""Checkpoints written in a background thread (speed.async_checkpoint, engine/epochs.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from test_techniques import Ctx, make

from tuneterm.engine import checkpoint


def _state() -> dict[str, Any]:
    return {
        "model": {"w": torch.ones(64, 64), "b": torch.zeros(3)},
        "optimizer": {"state": {0: {"exp_avg": torch.full((5,), 2.0)}}, "groups": [(0.9, 0.99)]},
        "best": {"epoch": 1, "value": 0.5},
        "rng": [torch.arange(4)],
    }


@pytest.mark.parametrize("background", [True, False])
def test_the_file_holds_the_state_at_write_time_whatever_training_does_next(
    tmp_path: Path, background: bool
) -> None:
    path = tmp_path / "ck" / "last.pt"
    state = _state()
    on_disk_when_done: list[bool] = []
    writer = checkpoint.Writer(background=background)
    writer.write([(path, state)], done=lambda: on_disk_when_done.append(path.is_file()))
    # Training goes on: the live tensors and the dicts change under the writer.
    state["model"]["w"].mul_(7)
    state["optimizer"]["state"][0]["exp_avg"].zero_()
    state["best"]["epoch"] = 2
    state["rng"][0].add_(10)
    writer.wait()
    assert on_disk_when_done == [True]
    got = checkpoint.load(path)
    assert torch.equal(got["model"]["w"], torch.ones(64, 64))
    assert torch.equal(got["optimizer"]["state"][0]["exp_avg"], torch.full((5,), 2.0))
    assert got["optimizer"]["groups"] == [(0.9, 0.99)]
    assert got["best"] == {"epoch": 1, "value": 0.5}
    assert torch.equal(got["rng"][0], torch.arange(4))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_a_failed_background_write_is_raised_on_the_training_thread_once(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    called: list[int] = []
    writer = checkpoint.Writer()
    writer.write([(blocker / "last.pt", _state())], done=lambda: called.append(1))
    with pytest.raises(OSError):  # mkdir under a file: FileExistsError / NotADirectoryError
        writer.wait()
    assert called == []  # nothing announced for a file that is not there
    writer.wait()  # reported once; the writer is usable again
    writer.write([(tmp_path / "ok.pt", _state())])
    writer.wait()
    assert checkpoint.load(tmp_path / "ok.pt")["best"]["epoch"] == 1


def test_one_write_in_flight_at_most_and_files_land_in_order(tmp_path: Path) -> None:
    gate = threading.Event()
    order: list[str] = []
    writer = checkpoint.Writer()

    def first_done() -> None:
        gate.wait(5)
        order.append("first")

    writer.write([(tmp_path / "a.pt", _state())], done=first_done)
    assert writer.busy
    releaser = threading.Timer(0.2, gate.set)
    releaser.start()
    writer.write([(tmp_path / "b.pt", _state())], done=lambda: order.append("second"))
    assert order == ["first"]  # the second write waited for the first
    writer.wait()
    assert order == ["first", "second"] and not writer.busy


class _Checking(Ctx):
    """Records, at each "checkpoint" event, what the files on disk hold at that moment."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.seen: list[tuple[int, int, int | None]] = []
        self.threads: set[str] = set()

    def emit(self, kind: str, /, **fields: Any) -> None:
        super().emit(kind, **fields)
        if kind == "checkpoint":
            self.threads.add(threading.current_thread().name)
            last = checkpoint.load(self.ckpt_dir / "last.pt")
            best = checkpoint.load(self.ckpt_dir / "best.pt")
            self.seen.append((fields["epoch"], last["epoch"], best["best"]["epoch"]))


@pytest.mark.parametrize("background", [True, False])
def test_the_checkpoint_event_means_the_epochs_files_are_on_disk(
    tmp_path: Path, background: bool
) -> None:
    tr = make(
        tmp_path, f"[train]\nepochs = 3\n[speed]\nasync_checkpoint = {str(background).lower()}"
    )
    ctx = _Checking(tmp_path)
    tr.ctx = ctx
    assert tr.fit() == "completed"
    best_epochs = [e["epoch"] for k, e in ctx.events if k == "checkpoint" and e["best"]]
    assert [(ep, last) for ep, last, _ in ctx.seen] == [(1, 1), (2, 2), (3, 3)]
    assert all(best == max(b for b in best_epochs if b <= ep) for ep, _, best in ctx.seen)
    kinds = [k for k, _ in ctx.events if k in ("val", "checkpoint")]
    assert kinds == ["val", "checkpoint"] * 3
    assert ctx.threads == ({"checkpoint-writer"} if background else {"MainThread"})
    assert tr.test()["n"] > 0  # fit returned with best.pt whole
