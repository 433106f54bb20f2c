"""Turn an exception that ended a run into a sentence a person can act on."""

from __future__ import annotations

import errno
from typing import Any


def describe(exc: BaseException, engine: Any) -> str:
    from tuneterm.config import ConfigError
    from tuneterm.engine.data import DataError
    from tuneterm.engine.models import ModelError

    if isinstance(exc, ConfigError | DataError | ModelError):
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
        return int(engine.store.config(engine.run_id).train.batch_size)
    except Exception:
        return 0
