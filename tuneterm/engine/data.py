"""Data helpers every kind shares: the error a data set raises, seeded stratified splits and
subsets, the shuffled order of an epoch, batch indices (so a resumed run replays it), and
scikit-learn's digits."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    """Data that cannot be used; the message names the file or folder."""


def stratified(
    labels: torch.Tensor, fractions: tuple[float, float], seed: int
) -> tuple[torch.Tensor, ...]:
    """Indices for (rest, val, test), each class split by the same fractions."""
    gen = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[], [], []]
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = round(len(idx) * fractions[0])
        n_test = round(len(idx) * fractions[1])
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    return tuple(torch.cat(p).sort().values for p in parts)


def fraction(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A seeded, stratified `fraction` of each class (at least one image per class)."""
    gen = torch.Generator().manual_seed(seed + 2)
    keep = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        n = max(1, round(len(idx) * fraction))
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.cat(keep).sort().values


def per_class(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    keep = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.cat(keep).sort().values


def default_workers() -> int:
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    return max(0, min(8, cpus - 1))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch `epoch`: a pure function, so a resumed run replays it."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


def batch_indices(
    n: int,
    batch_size: int,
    order: torch.Tensor | None,
    start_batch: int = 0,
    drop_single: bool = True,
) -> list[torch.Tensor]:
    idx = order if order is not None else torch.arange(n)
    batches = list(idx.split(batch_size))
    if drop_single and len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()  # a batch of one breaks BatchNorm in train mode
    return batches[start_batch:]


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: (1797, 8, 8) float64 images of values 0-16 and their int64
    labels, exactly what `sklearn.datasets.load_digits()` returns. Read with numpy from the
    file scikit-learn ships, without importing scikit-learn (which takes seconds)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    where = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(where[0]) / "datasets" / "data" / "digits.csv.gz" if where else None
    if path is None or not path.is_file():  # a scikit-learn that keeps it elsewhere
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images, d.target
    table = np.loadtxt(path, delimiter=",")  # 64 pixel columns, then the label
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
