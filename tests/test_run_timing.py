"""As fast as a tuned loop (issue 25): the optimizer's implementation, CUDA's warm-up (its CPU
no-op path), and a run's fixed cost part by part from its own events (`show --timing`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.cli import Cli

from tuneterm.config import RunConfig
from tuneterm.engine import warmup
from tuneterm.engine.optim import choose_impl, fused_devices, impl_of, make_optimizer
from tuneterm.runs.timing import timing
from tuneterm.store.runs import RunStore


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_optimizer_is_fused_wherever_torch_has_the_kernel(name: str) -> None:
    cpu = torch.device("cpu")
    expected = "fused" if "cpu" in fused_devices() else "foreach"
    assert choose_impl(name, cpu) == expected
    assert choose_impl(name, cpu, fused=False) == "foreach"  # speed.fused_optimizer = false
    cfg = RunConfig.model_validate({"train": {"optimizer": name}})
    opt = make_optimizer(torch.nn.Linear(4, 2), cfg.train, cpu)
    assert impl_of(opt) == expected
    assert bool(opt.defaults.get("fused")) == (expected == "fused")


def test_a_device_without_fused_kernels_gets_foreach() -> None:
    meta = torch.device("meta")  # a device type torch lists no fused kernels for
    assert "meta" not in fused_devices()
    assert choose_impl("adamw", meta) == "foreach"


def test_warmup_imports_torchvision_and_warms_cuda_only_where_there_is_cuda() -> None:
    w = warmup.start("cpu").wait(120)
    assert w.done == ["torchvision"] and w.error == "" and warmup.current() is w
    w = warmup.start("auto").wait(120)  # on a machine without CUDA: the import only
    assert w.thread is not None and not w.thread.is_alive()
    if not torch.cuda.is_available():
        assert w.done == ["torchvision"] and w.error == ""
    else:
        assert w.done[:3] == ["torchvision", "context", "cublas"]


def _ev(seq: int, t: float, kind: str, **fields: object) -> dict[str, object]:
    return {"seq": seq, "t": t, "kind": kind, **fields}


def test_parts_tile_the_wall_and_background_writes_are_apart() -> None:
    events = [
        _ev(0, 100.5, "status", status="starting"),
        _ev(1, 102.0, "phase", name="imports", process_start=100.0),
        _ev(2, 103.0, "phase", name="data"),
        _ev(3, 103.5, "phase", name="model"),
        _ev(4, 103.6, "start", device="cpu", optimizer="adamw", optimizer_impl="fused"),
        _ev(5, 103.7, "status", status="running"),
        _ev(6, 104.0, "phase", name="first_step", step=1),
        _ev(7, 106.0, "train", step=10, epoch=1, loss=1.0),
        _ev(8, 107.0, "val", step=10, epoch=1),
        _ev(9, 108.0, "train", step=20, epoch=2, loss=0.5),
        _ev(10, 108.5, "checkpoint", which="epoch", step=10, epoch=1),  # in the background
        _ev(11, 110.0, "train", step=30, epoch=2, loss=0.4),
        _ev(12, 111.0, "val", step=30, epoch=2),
        _ev(13, 112.0, "checkpoint", which="epoch", step=30, epoch=2),  # in place: the last
        _ev(14, 113.0, "test", split="test", epoch=2),
        _ev(15, 113.5, "status", status="completed"),
    ]
    tm = timing(events)
    names = [p.name for p in tm.parts]
    assert names == [
        "imports",
        "data",
        "model",
        "start",
        "first step",
        "train epoch 1",
        "val epoch 1",
        "train epoch 2",
        "val epoch 2",
        "checkpoint epoch 2",
        "test",
        "end",
    ]
    assert tm.wall == pytest.approx(13.5)
    assert sum(p.seconds for p in tm.parts) == pytest.approx(tm.wall)
    assert sum(p.share for p in tm.parts) == pytest.approx(1.0, abs=1e-3)
    assert tm.parts[0].seconds == pytest.approx(2.0)  # process start -> imports done
    assert [(p.name, p.seconds) for p in tm.background] == [("checkpoint epoch 1", 1.5)]
    assert tm.optimizer_impl == "fused"


def test_a_real_run_times_its_parts_in_show_timing(
    cli: Cli, tiny_config: Path, runs_dir: Path
) -> None:
    data = json.loads(cli("run", str(tiny_config), "--json", check=0).stdout)
    assert data["status"] == "completed"
    events = list(RunStore(runs_dir).events(data["id"]))
    phases = [e["name"] for e in events if e["kind"] == "phase"]
    assert phases == ["imports", "data", "model", "first_step"]
    start = next(e for e in events if e["kind"] == "start")
    assert start["optimizer_impl"] == choose_impl(RunConfig().train.optimizer, torch.device("cpu"))
    if not torch.cuda.is_available():  # the warm-up imported torchvision, no more, quietly
        assert set(start.get("warmup", [])) <= {"torchvision"} and "warmup_error" not in start

    shown = cli.json("show", data["id"], "--timing")
    names = [p["name"] for p in shown["parts"]]
    for part in ("imports", "data", "model", "start", "first step", "test", "end"):
        assert part in names
    assert "train epoch 1" in names and "val epoch 1" in names
    assert names[-1] == "end" and names.index("test") < names.index("end")
    assert shown["wall"] > 0
    assert sum(p["seconds"] for p in shown["parts"]) == pytest.approx(shown["wall"], abs=0.01)
    assert shown["optimizer_impl"] == start["optimizer_impl"]
    text = cli("show", data["id"], "--timing", check=0).stdout
    assert "imports" in text and "wall" in text and "%" in text
