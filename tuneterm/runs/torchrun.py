"""Command lines for distributed runs: torchrun for `train.gpus > 1`, and sbatch scripts.

No torch here: the launcher and the CLI build these lines before any engine exists. The engine
side (process group, sharding, stop agreement) is `tuneterm/engine/ddp.py`.

A distributed run's own process is the torchrun agent the launcher starts
(`python -m torch.distributed.run ... -m tuneterm.engine RUN_DIR`): its command line carries the
engine marker and the run folder, so the same identity check as a single engine applies. The
agent starts one engine process per GPU (rank); rank 0 records the agent's pid in meta.json.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tuneterm.config import ConfigError, ConfigIssue, RunConfig

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
ENGINE_MODULE = "tuneterm.engine"
# Seconds torchrun gives its workers after forwarding SIGTERM before it kills them (torch's own
# default is 30): rank 0 writes last.pt in that time. Set through the environment, which torch
# versions without this option ignore.
SHUTDOWN_TIMEOUT_ENV = {"TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "120"}


def distributed(cfg: RunConfig) -> bool:
    return cfg.train.gpus > 1 or cfg.dist.nnodes > 1


def check(cfg: RunConfig) -> None:
    """What `tuneterm run` needs to start this node's share of a multi-node run."""
    d = cfg.dist
    if d.nnodes <= 1:
        return
    if d.rdzv_backend != "static" and not d.rdzv_endpoint:
        raise ConfigError(
            [
                ConfigIssue(
                    "dist.rdzv_endpoint",
                    "",
                    "required when dist.nnodes > 1 (HOST:PORT every node reaches); "
                    "or use `tuneterm slurm`, which sets it",
                )
            ]
        )
    if d.rdzv_backend == "static" and not (d.master_addr and d.master_port):
        raise ConfigError(
            [
                ConfigIssue(
                    "dist.master_addr",
                    d.master_addr,
                    "dist.master_addr and dist.master_port are required when "
                    "dist.rdzv_backend = static and dist.nnodes > 1",
                )
            ]
        )


def rendezvous_args(cfg: RunConfig, run_id: str) -> list[str]:
    """torchrun's rendezvous options for this node (`tuneterm run` starts node rank 0)."""
    d = cfg.dist
    if d.nnodes <= 1:
        # One node: a private c10d store on a free port, so runs never collide on a port.
        return ["--standalone", "--nnodes", "1"]
    args = ["--nnodes", str(d.nnodes), "--rdzv-backend", d.rdzv_backend]
    if d.rdzv_backend == "static":
        args += ["--node-rank", "0", "--master-addr", d.master_addr]
        args += ["--master-port", str(d.master_port)]
    else:
        args += ["--rdzv-endpoint", d.rdzv_endpoint, "--rdzv-id", d.rdzv_id or run_id]
    return args


def torchrun_cmd(
    cfg: RunConfig, run_dir: Path, resume: bool, python: str = sys.executable
) -> list[str]:
    """The launched command of a distributed run: the agent, then the engine per rank."""
    cmd = [python, "-m", "torch.distributed.run"]
    cmd += ["--nproc-per-node", str(cfg.train.gpus), *rendezvous_args(cfg, run_dir.name)]
    cmd += ["--max-restarts", "0", "-m", ENGINE_MODULE, str(run_dir)]
    return cmd + (["--resume"] if resume else [])


@dataclass(frozen=True)
class SlurmJob:
    nodes: int
    gpus_per_node: int
    partition: str = ""
    time: str = ""
    port: int = 29500
    cpus_per_task: int = 0
    account: str = ""


def sbatch_script(run_dir: Path, job: SlurmJob, python: str = sys.executable) -> str:
    """An sbatch script: one srun task per node, each a torchrun agent with `gpus_per_node`
    workers, meeting at a c10d rendezvous on the job's first node. The run folder must be on a
    filesystem every node mounts. The script resumes from last.pt when it exists, so a requeued
    or re-submitted job continues the run."""
    run = shlex.quote(str(run_dir))
    head = [
        "#!/bin/bash",
        f"#SBATCH --job-name=tuneterm-{run_dir.name}",
        f"#SBATCH --nodes={job.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --output={run_dir}/slurm-%j.out",
        "#SBATCH --requeue",
    ]
    if job.gpus_per_node:  # none: a CPU job, with no gres line (sbatch refuses gres it lacks)
        head.insert(4, f"#SBATCH --gpus-per-node={job.gpus_per_node}")
    if job.cpus_per_task:
        head.append(f"#SBATCH --cpus-per-task={job.cpus_per_task}")
    if job.partition:
        head.append(f"#SBATCH --partition={job.partition}")
    if job.time:
        head.append(f"#SBATCH --time={job.time}")
    if job.account:
        head.append(f"#SBATCH --account={job.account}")
    torchrun = [
        shlex.quote(python),
        "-m torch.distributed.run",
        f"--nnodes {job.nodes}",
        f"--nproc-per-node {max(1, job.gpus_per_node)}",
        "--rdzv-backend c10d",
        '--rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT"',
        '--rdzv-id "tuneterm-$SLURM_JOB_ID"',
        "--max-restarts 0",
        f"-m {ENGINE_MODULE} {run} $RESUME",
    ]
    body = [
        "",
        "# tuneterm run folder (on a shared filesystem): " + str(run_dir),
        "set -euo pipefail",
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        f"MASTER_PORT={job.port}",
        "export MASTER_ADDR MASTER_PORT",
        "export " + " ".join(f"{k}={v}" for k, v in SHUTDOWN_TIMEOUT_ENV.items()),
        'RESUME=""',
        f"if [ -f {run}/checkpoints/last.pt ]; then RESUME=--resume; fi",
        "srun --kill-on-bad-exit=1 \\\n  " + " \\\n  ".join(torchrun),
        "",
    ]
    return "\n".join(head + body)
