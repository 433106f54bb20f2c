"""A kind's data as the shared engine sees it, below both the kinds and the techniques (each
names it in type hints; keeping it here keeps them from naming each other)."""

from __future__ import annotations

from collections.abc import Sized
from typing import Protocol

__all__ = ["Data"]


class Data(Protocol):
    """A kind's data: its class names (empty for regression) and its three splits."""

    @property
    def classes(self) -> list[str]: ...
    @property
    def train(self) -> Sized: ...
    @property
    def val(self) -> Sized: ...
    @property
    def test(self) -> Sized: ...
    @property
    def counts(self) -> dict[str, int]: ...
