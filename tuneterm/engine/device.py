"""The device a process trains on, its autocast precision, and [speed]'s CUDA switches."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from tuneterm.config import SpeedSection
from tuneterm.engine.ddp import Rank


def pick_device(name: str, rank: Rank | None = None) -> torch.device:
    """The device of this process; in a distributed run on CUDA, cuda:<local rank>."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if rank is not None and rank.distributed and name == "cuda":
        return torch.device("cuda", rank.local_rank)
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if name == "fp32" or (name == "auto" and device.type != "cuda"):
        return None
    if name == "fp16":
        return torch.float16
    if name == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cuda_speed(
    sp: SpeedSection,
    device: torch.device,
    model: torch.nn.Module | None,
    fixed_shapes: bool = True,
) -> bool:
    """Apply [speed]'s CUDA switches for a model about to train on `device` (nothing on a CPU):
    the cuDNN autotuner (only where batches keep one shape: it re-tunes on every new one), TF32,
    and channels_last for a convnet `model` (None: leave the layout alone). Returns whether
    inputs should be channels_last too."""
    if device.type != "cuda":
        return False
    torch.backends.cudnn.benchmark = sp.cudnn_benchmark and fixed_shapes
    torch.backends.cuda.matmul.allow_tf32 = sp.tf32
    torch.backends.cudnn.allow_tf32 = sp.tf32
    convnet = model is not None and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if model is not None and sp.channels_last and convnet:
        model.to(memory_format=torch.channels_last)
        return True
    return False


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[Any]:
    """Mixed precision on `device` in `dtype`; plain fp32 when None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)
