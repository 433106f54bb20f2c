"""CUDA's start-up, paid in a thread while the engine imports and loads its data.

The first CUDA call of a process creates the context, and the first matmul and convolution
load cuBLAS and cuDNN (libraries of hundreds of MiB) and their kernels: seconds in all, which
would otherwise land between `running` and the first train event. `start` does that work in a
daemon thread as soon as the engine knows its device; the loop's own first calls then find
the context and libraries loaded. cuBLAS and cuDNN handles are per thread, so the loop still
makes its own, but those are cheap once the libraries are in.

The same thread first imports torchvision (every run records its version; most kinds build
their models with it), so its import overlaps the engine's data loading instead of following
it. Without CUDA (a CPU device, or no GPU visible) that import is all it does. It never fails
a run: an error in the thread is kept for `wait` to report, and the loop meets the real one
itself.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field


@dataclass
class Warmup:
    """One warm-up: what it did, for the run's timing (`done` is empty when it did nothing)."""

    device: str
    done: list[str] = field(default_factory=list)  # "torchvision", "context", "cublas", "cudnn"
    error: str = ""
    thread: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> Warmup:
        if self.thread is not None:
            self.thread.join(timeout)
        return self


_current: Warmup | None = None


def start(device: str) -> Warmup:
    """Import torchvision and warm CUDA for a run on `device` ("auto", "cuda", "cuda:N",
    "cpu") in a thread; the import only, for a run on another device."""
    global _current
    w = Warmup(device)
    w.thread = threading.Thread(target=_warm, args=(w,), name="cuda-warmup", daemon=True)
    w.thread.start()
    _current = w
    return w


def current() -> Warmup | None:
    """The warm-up this process started, if any."""
    return _current


def _warm(w: Warmup) -> None:
    try:
        import torch
        import torchvision  # noqa: F401

        w.done.append("torchvision")
        if w.device == "cpu" or w.device.startswith(("mps", "xpu")):
            return
        if not torch.cuda.is_available():
            return
        index = int(w.device.split(":")[1]) if ":" in w.device else _local_rank()
        dev = torch.device("cuda", index)
        torch.cuda.set_device(dev)
        torch.cuda.init()
        w.done.append("context")
        a = torch.randn(64, 64, device=dev)
        (a @ a).sum().item()
        w.done.append("cublas")
        if torch.backends.cudnn.is_available():
            x = torch.randn(2, 3, 32, 32, device=dev)
            conv = torch.nn.functional.conv2d(x, torch.randn(8, 3, 3, 3, device=dev), padding=1)
            conv.sum().item()
            w.done.append("cudnn")
    except Exception as exc:  # the loop's own CUDA calls report a real problem
        w.error = f"{type(exc).__name__}: {exc}"


def _local_rank() -> int:
    value = os.environ.get("LOCAL_RANK", "0")
    return int(value) if value.isdigit() else 0
