"""Averaging weights (Wortsman et al., 2022, "Model soups"), with no run around it: the bench
(bench/outcomes_soup.py) and the soup's engine (run.py) share these.

- `average`: the mean of state dicts, key by key; integer buffers (BatchNorm's step count)
  are taken from the first.
- `recalibrate`: BatchNorm's running statistics estimated again on training batches. The mean
  of several models' statistics is not the statistics of the mean model.
- `greedy`: the paper's recipe. The candidates best first by their own validation score; each
  is added only if the soup's score does not get worse. The test split never takes part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

State = dict[str, Any]
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def average(states: list[State]) -> State:
    """The key-by-key mean of state dicts with the same keys (floating tensors only)."""
    first = states[0]
    out: State = {}
    for key, value in first.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            acc = torch.zeros_like(value, dtype=torch.float32)
            for s in states:
                acc += s[key].to(torch.float32)
            out[key] = (acc / len(states)).to(value.dtype)
        else:
            out[key] = value
    return out


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._NormBase]:
    return [m for m in model.modules() if isinstance(m, BATCHNORMS) and m.track_running_stats]


@torch.no_grad()
def recalibrate(model: nn.Module, forwards: Iterable[Callable[[nn.Module], Any]]) -> int:
    """Reset the BatchNorm statistics and estimate them again, a cumulative mean over the
    batches (each `forward(model)` runs one). Only BatchNorm is in train mode meanwhile
    (dropout stays off). Returns the batches seen; 0 when the model has no BatchNorm."""
    norms = batchnorms(model)
    if not norms:
        return 0
    saved = [(m, m.momentum) for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative moving average: every batch counts the same
        m.train()
    seen = 0
    try:
        for forward in forwards:
            forward(model)
            seen += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return seen


@dataclass
class Tried:
    """One step of a recipe: the candidate added, the soup's score with it, whether kept."""

    run: str
    own: float  # the candidate's own validation score
    score: float  # the soup's score with the candidate in
    kept: bool


@dataclass
class Soup:
    members: list[str]
    state: State  # the averaged weights, BatchNorm statistics re-estimated
    score: float
    tried: list[Tried] = field(default_factory=list)


# Scores averaged weights (of `n` models) on validation: (the score, the weights as scored,
# e.g. with BatchNorm statistics re-estimated).
Score = Callable[[State, int], tuple[float, State]]


def greedy(candidates: list[tuple[str, float, State]], score: Score, higher: bool = True) -> Soup:
    """candidates: (run id, own validation score, weights). `score(state, n)` scores weights
    averaged from `n` models on validation. Ties keep the candidate (the paper's `>=`)."""
    order = sorted(candidates, key=lambda c: -c[1] if higher else c[1])
    name, own, state = order[0]
    soup = Soup([name], state, own, [Tried(name, own, own, True)])
    chosen = [state]
    for name, own, state in order[1:]:
        value, scored = score(average([*chosen, state]), len(chosen) + 1)
        kept = value >= soup.score if higher else value <= soup.score
        soup.tried.append(Tried(name, own, value, kept))
        if kept:
            chosen.append(state)
            soup.members.append(name)
            soup.state, soup.score = scored, value
    return soup


def uniform(candidates: list[tuple[str, float, State]], score: Score) -> Soup:
    """Every candidate, averaged once."""
    value, state = score(average([c[2] for c in candidates]), len(candidates))
    tried = [Tried(name, own, value, True) for name, own, _ in candidates]
    return Soup([c[0] for c in candidates], state, value, tried)
