"""Turn an exception that ended a run into a sentence a person can act on."""

from __future__ import annotations

import errno
from typing import Any

from tuneterm.config import run_config


class NonFiniteLoss(RuntimeError):
    """The train loss became NaN or inf and `health.on_nan = "stop"`: the run fails, and no
    weights that saw it are saved (the message says which checkpoint is left)."""


def describe(exc: BaseException, engine: Any) -> str:
    from tuneterm.config import ConfigError
    from tuneterm.engine.data import DataError
    from tuneterm.engine.models import ModelError

    if isinstance(exc, ConfigError | DataError | ModelError | NonFiniteLoss):
        return str(exc)
    if _is_oom(exc):
        # `resume` keeps the run's config, so the advice is a new launch with a smaller batch.
        bs = _batch_size(engine)
        smaller = max(1, bs // 2) if bs else 0
        return (
            f"out of memory with train.batch_size = {bs or '?'}: "
            f"try a smaller batch, e.g. train.batch_size = {smaller or 'half of it'} "
            f"(tuneterm run CONFIG --set train.batch_size={smaller or 'N'}), "
            "or a smaller data.image_size or model"
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"disk full while writing {exc.filename or 'run files'}: free space under "
            f"{engine.dir.parent}, then `tuneterm resume {engine.run_id}`; "
            "the previous checkpoint is intact"
        )
    rank = getattr(engine, "rank", None)
    if rank is not None and rank.distributed and _is_peer_loss(exc):
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return (
            f"a rank of this distributed run (world size {rank.world}) failed or was killed, "
            f"so rank 0's collective broke ({type(exc).__name__}: {first}); every rank's "
            f"output is in engine.log; `tuneterm resume {engine.run_id}` continues from last.pt"
        )
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return f"interrupted ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def _batch_size(engine: Any) -> int:
    try:
        return int(run_config(engine.store, engine.run_id).train.batch_size)
    except Exception:
        return 0


def _is_peer_loss(exc: BaseException) -> bool:
    """A collective that failed because another rank went away (gloo/NCCL/c10d errors)."""
    try:
        import torch.distributed as dist

        if isinstance(exc, dist.DistError):
            return True
    except (ImportError, AttributeError):
        pass
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        w in text for w in ("gloo", "nccl", "connection reset", "connection closed", "c10d")
    )
