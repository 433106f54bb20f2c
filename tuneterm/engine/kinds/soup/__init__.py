"""Model soups (tuneterm/tasks/soup/): the kind's engine module. A soup has a process of its
own (`run.py`, the spec's runner), which averages and evaluates; nothing here trains."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneterm.config import RunConfig
from tuneterm.store.runs import RunStore
from tuneterm.tasks.soup import ingredients
from tuneterm.tasks.soup.section import SoupSection

if TYPE_CHECKING:
    from tuneterm.engine.kinds import Setup, Task


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    """The parents can be averaged: finished, one network, one start, one data split."""
    if store is not None:
        sec = SoupSection.of(cfg)
        ingredients.check(store, ingredients.resolve(store, sec.parents))


def build(cfg: RunConfig, setup: Setup) -> Task:
    raise TypeError("a soup trains nothing: its process is tuneterm.engine.kinds.soup.run")
