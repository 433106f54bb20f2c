"""Test hooks: `TUNETERM_FAULT` makes the engine fail the way real resources fail.

Only tests and the soak scripts set it; unset, nothing here does anything.

    TUNETERM_FAULT=oom@step3     the model's 3rd training forward pass raises
                                 torch.OutOfMemoryError, as the CUDA allocator does
    TUNETERM_FAULT=enospc@ckpt2  the 2nd checkpoint written by this process fails with
                                 OSError(ENOSPC) half-way through its bytes, as a full disk does
    TUNETERM_FAULT=nan@step5     the model's output in its 5th training forward pass is NaN
                                 (and stays NaN from then on), as a diverging run's is
    TUNETERM_FAULT=slowdata@ms50 every training batch takes 50 ms longer to arrive, as a slow
                                 disk or an overloaded data loader makes it

Several faults are separated by commas. The faults travel through the same code paths as real
ones: the OOM is raised inside the forward pass, the ENOSPC from the file's `write`.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

ENV = "TUNETERM_FAULT"
_counts: dict[str, int] = {}


def planned() -> dict[str, int]:
    """{"oom": 3, "enospc": 2} from `TUNETERM_FAULT=oom@step3,enospc@ckpt2`."""
    out: dict[str, int] = {}
    for part in os.environ.get(ENV, "").split(","):
        kind, _, at = part.strip().partition("@")
        digits = "".join(ch for ch in at if ch.isdigit())
        if kind and digits:
            out[kind] = int(digits)
    return out


def _hit(kind: str) -> bool:
    at = planned().get(kind)
    if at is None:
        return False
    _counts[kind] = _counts.get(kind, 0) + 1
    return _counts[kind] == at


def install(model: Any) -> None:
    """The faults that live in the model's forward pass (oom, nan), if planned."""
    install_oom(model)
    install_nan(model)


def install_nan(model: Any) -> None:
    """If planned, make the model's outputs NaN from its Nth training forward pass on."""
    if "nan" not in planned():
        return
    poisoned = [False]

    def hook(module: Any, args: Any, output: Any) -> Any:
        if module.training and (poisoned[0] or _hit("nan")):
            poisoned[0] = True
            return _poison(output)
        return output

    model.register_forward_hook(hook)


def _poison(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output * float("nan")
    if isinstance(output, dict):
        return {k: _poison(v) for k, v in output.items()}
    if hasattr(output, "logits"):  # a transformers ModelOutput
        output.logits = output.logits * float("nan")
        if getattr(output, "loss", None) is not None:
            output.loss = output.loss * float("nan")
    return output


def slow(batches: Iterator[Any]) -> Iterator[Any]:
    """If planned (slowdata@msN), each batch arrives N ms late."""
    delay = planned().get("slowdata")
    if not delay:
        yield from batches
        return
    for batch in batches:
        time.sleep(delay / 1000)
        yield batch


def install_oom(model: Any) -> None:
    """If planned, make the model's Nth training forward pass raise torch.OutOfMemoryError."""
    if "oom" not in planned():
        return
    import torch

    def hook(module: Any, args: Any) -> None:
        if module.training and _hit("oom"):
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB "
                f"(simulated by {ENV}={os.environ.get(ENV)})"
            )

    model.register_forward_pre_hook(hook)


class _FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes have been written."""

    def __init__(self, fh: BinaryIO, room: int) -> None:
        self._fh, self._room = fh, room

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B"))
        if n > self._room:  # fill what is left, then fail (and keep failing: the disk is full)
            self._fh.write(bytes(memoryview(data).cast("B")[: self._room]))
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= n
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def disk(fh: BinaryIO) -> BinaryIO:
    """The file to write a checkpoint through: `fh` itself, or one that fills up if planned."""
    if "enospc" in planned() and _hit("enospc"):
        return _FullDisk(fh, 4096)  # type: ignore[return-value]
    return fh
