"""The engine's side of a distributed run: one process per GPU (rank), started by torchrun.

- `Rank.from_env()` reads torchrun's environment without importing torch.
- `Dist` holds the process group: nccl for the model on CUDA (or gloo on CPU), plus a gloo
  group for control traffic on CPU tensors (stop votes, barriers, gathered objects), so the
  control path never forces a CUDA sync.
- Data is sharded the DistributedSampler way (`shard`): every rank draws the same seeded
  permutation, pads it to a multiple of the world size, and takes `rank::world`.
- A stop must reach every rank at the same step or DDP deadlocks: `StopVote` all-reduces each
  rank's stop flag once per step, asynchronously, and every rank acts on the same result.

Only rank 0 writes the run's events, meta.json and checkpoints (one writer per file).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls) -> Rank:
        env = os.environ
        if "TORCHELASTIC_RUN_ID" not in env and "LOCAL_RANK" not in env:
            return cls()  # a plain single-process engine
        return cls(
            int(env.get("RANK", "0")),
            int(env.get("WORLD_SIZE", "1")),
            int(env.get("LOCAL_RANK", "0")),
            int(env.get("LOCAL_WORLD_SIZE", "1")),
        )

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def die_with_parent() -> None:
    """A worker ends when its torchrun agent dies (kill -9 of the agent must not leave ranks
    training with nobody to report them). Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the agent died before prctl took effect
        os._exit(1)


def local_gpus() -> list[int]:
    """NVML indices of the GPUs this node's ranks use: local rank i -> visible device i."""
    n = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [int(i) for i in visible.split(",") if i.strip().isdigit()]
        return ids[:n]
    return list(range(n))


def shard(order: torch.Tensor, rank: int, world: int, pad: bool = True) -> torch.Tensor:
    """This rank's share of `order`, as DistributedSampler does: padded (repeating from the
    start) to a multiple of `world` so every rank gets the same number of items, then
    `rank::world`. Without `pad` (evaluation) nothing is counted twice."""
    import torch

    if world <= 1:
        return order
    if pad and len(order) % world:
        extra = world - len(order) % world
        reps = -(-extra // max(len(order), 1))
        order = torch.cat([order, order.repeat(reps)[:extra]])
    return order[rank::world]


class Dist:
    """The process group of a distributed run (a no-op shell when world == 1)."""

    def __init__(self, rank: Rank, device: torch.device, backend: str = "auto") -> None:
        import torch.distributed as dist

        self.rank, self.device = rank, device
        self.ctrl: Any = None
        if not rank.distributed:
            return
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            import torch

            torch.cuda.set_device(device)
        dist.init_process_group(backend)
        self.ctrl = dist.new_group(backend="gloo")

    @property
    def on(self) -> bool:
        return self.rank.distributed

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Summed over ranks, in place, on the model's device."""
        if self.on:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on any (blocking; off the hot path)."""
        if not self.on:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.ctrl)
        return bool(t.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.on:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.rank.world
        dist.all_gather_object(out, obj, group=self.ctrl)
        return out

    def broadcast_buffers(self, module: Any) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank. Each rank's last
        forward updated its own; evaluating rank 0's, the one checkpointed, on every shard
        makes the reduced metrics those of the saved model."""
        if not self.on:
            return
        import torch.distributed as dist

        for buf in module.buffers():
            dist.broadcast(buf, src=0)

    def barrier(self) -> None:
        if self.on:
            import torch.distributed as dist

            dist.barrier(group=self.ctrl)

    def close(self) -> None:
        if self.on:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


class StopVote:
    """Agree on stopping at the same step on every rank, without a blocking sync per step.

    Each `poll` waits for the previous step's all-reduce of the stop flags (long finished: it
    ran on CPU over gloo while the step computed), then posts this step's. Every rank calls
    `poll` once per step, so all see the same reduced value at the same step; once one rank
    asked, every rank answers True from then on. Single process: the local flag, directly."""

    def __init__(self, dist: Dist) -> None:
        self.dist = dist
        self.agreed = False
        self._work: Any = None
        self._buf: Any = None

    def poll(self, local: bool) -> bool:
        if not self.dist.on:
            return local
        if self.agreed:
            return True
        import torch
        import torch.distributed as dist

        if self._work is not None:
            self._work.wait()
            if int(self._buf.item()) > 0:
                self.agreed = True
                self._work = None
                return True
        self._buf = torch.tensor([int(local)], dtype=torch.int32)
        self._work = dist.all_reduce(
            self._buf, op=dist.ReduceOp.MAX, group=self.dist.ctrl, async_op=True
        )
        return False

    def settle(self) -> bool:
        """Finish the vote in flight (at an epoch's end, before other collectives); True if
        any rank asked to stop. Every rank calls it at the same point."""
        if self._work is not None:
            self._work.wait()
            self._work = None
            if int(self._buf.item()) > 0:
                self.agreed = True
        return self.agreed
