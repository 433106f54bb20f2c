"""Multi-GPU runs on the CPU: torchrun + DistributedDataParallel with gloo and 2 processes,
through the real CLI; and the slurm script with its torchrun command line."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest
import torch
from helpers.cli import TINY, Cli, wait_for
from helpers.waiting import PATIENCE

from tuneterm.config import ConfigError, loads, run_config
from tuneterm.engine.ddp import shard
from tuneterm.runs.lifecycle import new_run
from tuneterm.runs.torchrun import SlurmJob, sbatch_script, torchrun_cmd
from tuneterm.store.runs import RunStore

# 60 training images (30 per rank, 2 steps of 16 per epoch); val and test 107 images each.
DDP = TINY.replace("per_class = 40", "per_class = 20").replace("epochs = 4", "epochs = 3")


@pytest.fixture
def ddp_config(tmp_path: Path) -> Path:
    path = tmp_path / "ddp.toml"
    path.write_text(DDP.replace("log_every = 2", "log_every = 1"))
    return path


def _events(store: RunStore, run_id: str) -> list[dict]:
    return list(store.events(run_id))


def _engines(run_dir: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if str(run_dir) in " ".join(p.info["cmdline"] or []):
            out.append(p)
    return out


def test_shards_like_distributed_sampler() -> None:
    order = torch.randperm(11, generator=torch.Generator().manual_seed(3))
    parts = [shard(order, r, 2) for r in range(2)]
    assert [len(p) for p in parts] == [6, 6]  # padded to a multiple of the world size
    assert set(torch.cat(parts).tolist()) == set(range(11))
    assert torch.equal(torch.cat([parts[0][:1], parts[1][:1]]), order[:2])  # rank::world
    evals = [shard(order, r, 2, pad=False) for r in range(2)]
    assert sorted(torch.cat(evals).tolist()) == list(range(11))  # each image exactly once


def test_config_rejects_what_ddp_cannot_do() -> None:
    with pytest.raises(ConfigError, match=r'freeze.strategy = "gradual".*train.gpus > 1'):
        loads(TINY, ["train.gpus=2", "freeze.strategy=gradual"])
    with pytest.raises(ConfigError, match=r'train.device = "cuda:1"'):
        loads(TINY, ["train.gpus=2", "train.device=cuda:1"])
    with pytest.raises(ConfigError, match=r'dist.rdzv_backend = "etc": unknown choice'):
        loads(TINY, ["dist.rdzv_backend=etc"])


def test_launch_checks_this_machines_devices(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneterm.runs import launcher

    store = RunStore(runs_dir)
    # No CUDA here: CPU processes, where SyncBatchNorm cannot run.
    with pytest.raises(ConfigError, match=r"train\.sync_bn = true: SyncBatchNorm needs CUDA"):
        launcher.validate(loads(TINY, ["train.gpus=2", "train.sync_bn=true"]), store)
    # A GPU machine is the edge this one lacks: its device count, faked.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"train\.gpus = 4: this machine has 2 CUDA device"):
        launcher.validate(loads(TINY, ["train.gpus=4"]), store)
    launcher.validate(loads(TINY, ["train.gpus=2", "train.sync_bn=true"]), store)
    with pytest.raises(ConfigError, match=r"dist\.rdzv_endpoint"):
        launcher.validate(loads(TINY, ["dist.nnodes=2"]), store)
    launcher.validate(loads(TINY, ["dist.nnodes=2"]), store, here=False)  # a batch job
    assert store.ids() == []


def test_stop_resume_completes_over_two_cpu_processes(
    cli: Cli, ddp_config: Path, runs_dir: Path
) -> None:
    store = RunStore(runs_dir)
    run_id = cli("run", str(ddp_config), "--gpus", "2", "--detach", check=0).stdout.strip()
    run_dir = runs_dir / run_id
    wait_for(lambda: any(e["kind"] == "train" for e in _events(store, run_id)))
    meta = store.info(run_id).meta
    assert meta is not None and meta.world_size == 2
    assert [d["rank"] for d in meta.devices] == [0, 1] and meta.device == "2 x cpu"
    agent = psutil.Process(meta.pid)  # the run's own process: the torchrun agent
    assert "torch.distributed.run" in " ".join(agent.cmdline())
    workers = [d["pid"] for d in meta.devices]
    assert sorted(c.pid for c in agent.children()) == sorted(workers)
    # Only rank 1 is asked to stop: the ranks must still agree on one step (else DDP would
    # deadlock), rank 0 must checkpoint it, and the agent must then exit by itself.
    os.kill(workers[1], signal.SIGTERM)
    wait_for(lambda: not _engines(run_dir))  # agent and both ranks are gone
    stopped = store.info(run_id)
    assert stopped.status == "stopped" and stopped.meta is not None, stopped
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    last = [e for e in _events(store, run_id) if e["kind"] == "checkpoint"][-1]
    assert last["which"] == "last" and last["step"] == stopped.meta.step
    done = json.loads(cli("resume", run_id, "--json", check=0).stdout)
    assert done["status"] == "completed" and done["meta"]["resumes"] == 1
    events = _events(store, run_id)
    assert [e["seq"] for e in events] == list(range(len(events)))  # one stream, one writer
    assert [e["status"] for e in events if e["kind"] == "status"][-1] == "completed"
    assert any(e["kind"] == "resume" and e["from_checkpoint"] for e in events)
    steps = [e["step"] for e in events if e["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    assert done["step"] == done["total_steps"] == 6  # 3 epochs x 2 steps per rank
    test = next(e for e in events if e["kind"] == "test")
    assert test["n"] == done["meta"]["data"]["test"] == 107  # the whole split, not a shard
    assert sum(map(sum, test["confusion"])) == 107
    assert "rank 1" not in (run_dir / "engine.log").read_text()  # no rank failed
    # Rank 0's best val figures are those of the whole val split: re-evaluate best.pt here,
    # in one process, and compare.
    _check_best_against_single_process(store, run_id)


def _check_best_against_single_process(store: RunStore, run_id: str) -> None:
    from torch.nn import functional as F

    from tuneterm.engine import checkpoint
    from tuneterm.engine.kinds.classify.data import batches, build
    from tuneterm.engine.kinds.classify.models import build_model

    cfg = run_config(store, run_id)
    data = build(cfg.data, cfg.train.seed)
    best = checkpoint.load(store.checkpoint_dir(run_id) / "best.pt")
    model = build_model(cfg.model, len(data.classes), None, cfg.head).model
    model.load_state_dict(best["model"])
    model.eval()
    mean = torch.tensor(best["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(best["std"]).view(1, 3, 1, 1) * 255
    correct, loss, n = 0, 0.0, 0
    with torch.no_grad():
        for x, y in batches(data.val, 64, cfg.data.image_size, drop_single=False):
            logits = model((x.float() - mean) / std)
            correct += int((logits.argmax(1) == y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
    assert n == len(data.val)
    assert best["best"]["val_acc"] == pytest.approx(correct / n, abs=1e-9)
    assert best["best"]["val_loss"] == pytest.approx(loss / n, rel=1e-4)


AGENT = """
import signal, subprocess, sys, time
child = ("import signal, sys, time; "
         "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(60)")
ranks = [subprocess.Popen([sys.executable, "-c", child, "tuneterm.engine", sys.argv[2]],
                          start_new_session=True) for _ in range(2)]
print(" ".join(str(r.pid) for r in ranks), flush=True)
signal.signal(signal.SIGTERM, lambda *a: None)  # torchrun's agent would forward it: ignore here
while any(r.poll() is None for r in ranks):
    time.sleep(0.05)
"""


def _fake_torchrun(store: RunStore) -> tuple[str, psutil.Process, list[psutil.Process]]:
    """A process shaped like a torchrun agent (its command line names torch.distributed.run,
    the engine marker and the run) with two rank processes in sessions of their own."""
    import subprocess

    run_id = store.create(new_run(loads(TINY))).id
    cmd = [sys.executable, "-c", AGENT, "torch.distributed.run", str(store.run_dir(run_id))]
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert popen.stdout is not None
    ranks = [psutil.Process(int(p)) for p in popen.stdout.readline().split()]
    agent = psutil.Process(popen.pid)
    meta_path = store.meta_path(run_id)
    from tuneterm.store.meta import load_meta, save_meta

    meta = load_meta(meta_path)
    meta.status, meta.pid, meta.pid_start = "running", agent.pid, agent.create_time()
    save_meta(meta_path, meta)
    return run_id, agent, ranks


def test_stop_signals_the_ranks_and_kill_takes_the_whole_tree(runs_dir: Path) -> None:
    from tuneterm.runs import launcher

    store = RunStore(runs_dir)
    run_id, agent, ranks = _fake_torchrun(store)
    launcher.stop(store, run_id)  # SIGTERM to each rank, not to the agent
    psutil.wait_procs(ranks, timeout=PATIENCE)
    assert not any(r.is_running() and r.status() != psutil.STATUS_ZOMBIE for r in ranks)
    agent.wait(PATIENCE)  # it ends once its ranks have
    run_id, agent, ranks = _fake_torchrun(store)
    launcher.kill(store, run_id)  # agent and ranks, though the ranks have their own sessions
    _, alive = psutil.wait_procs([agent, *ranks], timeout=PATIENCE)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_kill9_of_a_rank_ends_the_run(cli: Cli, ddp_config: Path, runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    run_id = cli(
        "run", str(ddp_config), "--gpus", "2", "--detach", "--set", "train.epochs=20", check=0
    ).stdout.strip()
    wait_for(lambda: any(e["kind"] == "train" for e in _events(store, run_id)))
    meta = store.info(run_id).meta
    assert meta is not None
    os.kill(meta.devices[1]["pid"], signal.SIGKILL)  # rank 1 dies mid-training
    wait_for(lambda: store.info(run_id).status in ("failed", "crashed"))
    wait_for(lambda: not _engines(runs_dir / run_id))  # nothing left hanging
    info = store.info(run_id)
    assert info.meta is not None and info.meta.step < info.meta.total_steps
    assert "rank" in (info.meta.error or info.reason)


def test_slurm_script_and_torchrun_command_line(
    cli: Cli, tiny_config: Path, runs_dir: Path, tmp_path: Path
) -> None:
    out = json.loads(
        cli(
            "slurm",
            str(tiny_config),
            "--nodes",
            "2",
            "--gpus-per-node",
            "4",
            "--partition",
            "gpu",
            "--time",
            "01:00:00",
            "--json",
            check=0,
        ).stdout
    )
    run_dir = Path(out["path"])
    store = RunStore(runs_dir)
    info = store.info(out["id"])
    assert info.status == "submitted" and info.alive  # waits in the queue, never "crashed"
    cfg = run_config(store, out["id"])
    assert (cfg.train.gpus, cfg.dist.nnodes) == (4, 2)
    script = Path(out["script"]).read_text()
    assert Path(out["script"]) == run_dir / "slurm.sbatch"
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=01:00:00",
        f"#SBATCH --output={run_dir}/slurm-%j.out",
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "MASTER_PORT=29500",
        f"if [ -f {run_dir}/checkpoints/last.pt ]; then RESUME=--resume; fi",
    ):
        assert line in script.splitlines(), line
    command = " ".join(script.split("srun ", 1)[1].replace("\\\n", " ").split())
    assert command == (
        "--kill-on-bad-exit=1 "
        f"{sys.executable} "
        "-m torch.distributed.run --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d "
        '--rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id "tuneterm-$SLURM_JOB_ID" '
        f"--max-restarts 0 -m tuneterm.engine {run_dir} $RESUME"
    )
    assert cli("resume", out["id"]).returncode == 3  # nothing to resume: it waits for its job
    # The command `tuneterm run` launches: single node, and a node of a multi-node run.
    one = loads(TINY, ["train.gpus=2"])
    assert torchrun_cmd(one, run_dir, resume=True, python="py") == [
        "py", "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        "--nnodes", "1", "--max-restarts", "0", "-m", "tuneterm.engine", str(run_dir), "--resume",
    ]  # fmt: skip
    two = loads(TINY, ["train.gpus=8", "dist.nnodes=2", 'dist.rdzv_endpoint="n0:29400"'])
    assert torchrun_cmd(two, run_dir, resume=False, python="py")[3:13] == [
        "--nproc-per-node", "8", "--nnodes", "2", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", "n0:29400", "--rdzv-id", run_dir.name,
    ]  # fmt: skip
    assert sbatch_script(run_dir, SlurmJob(2, 4, "gpu", "01:00:00"), python=sys.executable) == (
        script
    )


def test_tui_system_pane_lists_every_rank(tmp_path: Path) -> None:
    from rich.console import Console

    from tuneterm.store.meta import RunLabel, RunMeta
    from tuneterm.store.runs import RunInfo
    from tuneterm.tui.widgets.panes import system_view

    meta = RunMeta(
        id="20261124-000000-resnet18-abcd",
        status="completed",
        device="2 x cuda (NVIDIA H100)",
        world_size=2,
        devices=[
            {"rank": 0, "host": "n1", "device": "cuda:0 (NVIDIA H100)", "pid": 11},
            {"rank": 1, "host": "n2", "device": "cuda:0 (NVIDIA H100)", "pid": 12},
        ],
    )
    info = RunInfo(meta.id, tmp_path, "completed", meta, RunLabel())
    console = Console(width=100, record=True)
    console.print(system_view(info, None, [], "NVML unavailable: no driver"))
    text = console.export_text()
    assert "world size 2" in text
    assert "rank 0: cuda:0 (NVIDIA H100) on n1" in text
    assert "rank 1: cuda:0 (NVIDIA H100) on n2" in text


def test_a_run_on_another_host_goes_by_its_heartbeat() -> None:
    import time

    from tuneterm.store.meta import RunMeta
    from tuneterm.store.runs import REMOTE_SILENCE, derive_status

    now = time.time()
    meta = RunMeta(id="20261124-000000-resnet18-abcd", status="running", pid=4242, host="n7")
    meta.updated = now - 5  # its engine wrote meta.json 5 s ago: trusted, not pid-checked
    assert derive_status(meta, now) == ("running", "")
    meta.updated = now - REMOTE_SILENCE - 1
    status, reason = derive_status(meta, now)
    assert status == "crashed" and reason.startswith("no word from n7 for")
    assert derive_status(RunMeta(id=meta.id, status="submitted"), now + 86400)[0] == "submitted"
