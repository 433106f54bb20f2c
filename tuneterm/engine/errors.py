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
        bs = _batch_size(engine)
        hint = (
            f"; try train.batch_size = {max(1, bs // 2)}"
            if bs
            else "; try a smaller train.batch_size"
        )
        return (
            f"out of memory with train.batch_size = {bs}{hint} "
            "(then `tuneterm resume` or launch again)"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
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
