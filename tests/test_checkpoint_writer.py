"""Checkpoints written in a background thread (speed.async_checkpoint, engine/epochs.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.trainer import Ctx, make

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
        gate.wait(120)  # set by the timer below; the bound only ends a broken run
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
        tmp_path,
        "[train]\nepochs = 3\n[speed]\ncheckpoint_budget = 0\nasync_checkpoint = "
        + ("true" if background else '"off"'),
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


def test_auto_writes_in_the_background_on_a_gpu_or_with_a_core_to_spare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuneterm.engine.epochs import background_writes

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert background_writes("on", cpu) and not background_writes("off", gpu)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert not background_writes("auto", cpu)  # every core trains: write in place
    assert background_writes("auto", gpu)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert background_writes("auto", cpu)


def test_async_checkpoint_takes_on_off_auto_and_booleans_and_names_a_bad_value() -> None:
    from tuneterm.config import ConfigError, loads

    for text, want in (("true", "on"), ("false", "off"), ('"on"', "on"), ('"auto"', "auto")):
        assert loads(f"[speed]\nasync_checkpoint = {text}\n").speed.async_checkpoint == want
    with pytest.raises(ConfigError) as err:
        loads('[speed]\nasync_checkpoint = "sometimes"\n')
    assert 'speed.async_checkpoint = "sometimes"' in str(err.value)


class _Timed(Ctx):
    """A run whose times the test states, whatever the machine's speed: the clock handed to
    `fit` moves only here, by `epoch_s` at each epoch's "val" and by `write_s` at each
    "checkpoint" (written in place, so inside the write the cadence times)."""

    def __init__(self, tmp: Path, epoch_s: float, write_s: float) -> None:
        super().__init__(tmp)
        self.epoch_s, self.write_s, self.now = epoch_s, write_s, 0.0

    def clock(self) -> float:
        return self.now

    def emit(self, kind: str, /, **fields: Any) -> None:
        super().emit(kind, **fields)
        self.now += {"val": self.epoch_s, "checkpoint": self.write_s}.get(kind, 0.0)


class _StopAt(_Timed):
    def __init__(self, tmp: Path, tr_steps: int) -> None:
        super().__init__(tmp, epoch_s=1.0, write_s=1.0)
        self.at = tr_steps
        self.trainer: Any = None

    def stop_requested(self) -> bool:
        return self.trainer is not None and self.trainer.state.step >= self.at


def _written(ctx: Ctx) -> list[int]:
    return [f["epoch"] for k, f in ctx.events if k == "checkpoint" and f["which"] == "epoch"]


@pytest.mark.parametrize(
    ("epoch_s", "want"),
    [
        # Epoch 1 is written (1 s); epochs 2 and 3 train for far less than 50x that write's
        # cost, so they wait; the last epoch always writes, with the best model kept in memory.
        (1.0, [1, 4]),
        # Each epoch trains for more than 50x the last write: every epoch is written.
        (60.0, [1, 2, 3, 4]),
    ],
)
def test_short_epochs_are_checkpointed_together_within_the_budget(
    tmp_path: Path, epoch_s: float, want: list[int]
) -> None:
    tr = make(tmp_path, '[train]\nepochs = 4\n[speed]\nasync_checkpoint = "off"')
    assert tr.cfg.speed.checkpoint_budget == 0.02  # the default
    tr.ctx = ctx = _Timed(tmp_path, epoch_s=epoch_s, write_s=1.0)
    assert tr.fit(clock=ctx.clock) == "completed"
    assert _written(ctx) == want
    best = checkpoint.load(tmp_path / "best.pt")
    last = checkpoint.load(tmp_path / "last.pt")
    assert best["best"] == tr.state.best == last["best"] and last["epoch"] == 4
    scored = [f for k, f in ctx.events if k == "val"]
    assert best["best"]["value"] == max(f["val_acc"] for f in scored)


def test_a_stop_writes_the_best_model_that_was_waiting(tmp_path: Path) -> None:
    tr = make(tmp_path, '[train]\nepochs = 6\n[speed]\nasync_checkpoint = "off"')
    steps = tr.steps_per_epoch
    ctx = _StopAt(tmp_path, steps * 3 + 1)  # one step into epoch 4
    ctx.trainer, tr.ctx = tr, ctx
    assert tr.fit(clock=ctx.clock) == "stopped"
    assert _written(ctx) == [1]  # epochs of 1 s after a 1 s write: 2 and 3 wait
    last = checkpoint.load(tmp_path / "last.pt")
    assert last["epoch"] == 3 and last["batch"] == 1 and last["step"] == steps * 3 + 1
    assert checkpoint.load(tmp_path / "best.pt")["best"] == last["best"] == tr.state.best


def test_a_snapshot_keeps_a_state_dicts_type_and_module_versions() -> None:
    sd = torch.nn.Sequential(torch.nn.BatchNorm1d(3)).state_dict()
    snap = checkpoint.snapshot(sd)
    assert type(snap) is type(sd) and list(snap) == list(sd)
    assert snap._metadata == sd._metadata  # type: ignore[attr-defined]
    assert snap._metadata[""] is not sd._metadata[""]  # type: ignore[attr-defined]


def test_a_snapshot_into_an_earlier_one_reuses_its_memory_and_copies_the_values() -> None:
    state = _state()
    first = checkpoint.snapshot(state)
    state["model"]["w"].add_(1.0)  # training goes on
    state["optimizer"]["state"][0]["exp_avg"].mul_(3.0)
    second = checkpoint.snapshot(state, first)
    assert second["model"]["w"].data_ptr() == first["model"]["w"].data_ptr()
    assert second["model"]["w"].data_ptr() != state["model"]["w"].data_ptr()
    assert torch.equal(second["model"]["w"], torch.full((64, 64), 2.0))
    assert torch.equal(second["optimizer"]["state"][0]["exp_avg"], torch.full((5,), 6.0))
    state["model"]["w"].add_(1.0)  # the snapshot no longer changes with the model
    assert torch.equal(second["model"]["w"], torch.full((64, 64), 2.0))
    # A tensor whose shape changed gets fresh memory.
    state["model"]["b"] = torch.zeros(4)
    assert checkpoint.snapshot(state, second)["model"]["b"].shape == (4,)
