"""What config asks of the kinds' registry, which sits above it (`tuneterm.tasks`): the
run.task and data.dataset choices and the checks that need the kinds. `tuneterm.tasks`
installs its rules with `use_kinds` when it is imported; every entry point imports it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from tuneterm.config.choices import STATIC

if TYPE_CHECKING:
    from tuneterm.config.schema import RunConfig
    from tuneterm.errors import ConfigIssue


class KindRules(Protocol):
    """What config asks of the kinds' registry (tuneterm.tasks implements it)."""

    def choices(self) -> dict[str, tuple[str, ...]]:
        """{"run.task": the kinds, "data.dataset": every kind's data sets}."""
        ...

    def structural_issues(self, cfg: RunConfig) -> list[ConfigIssue]:
        """Checks made with the config's other cross-field checks (train.gpus and the kind)."""
        ...

    def kind_issues(self, cfg: RunConfig) -> list[ConfigIssue]:
        """The kinds' own checks; asked only of a config with no other issue."""
        ...


_RULES: list[KindRules] = []


def use_kinds(rules: KindRules) -> None:
    _RULES[:] = [rules]


def kind_rules() -> KindRules:
    if not _RULES:
        raise RuntimeError(
            "no kinds of run are registered: import tuneterm.tasks before reading a config"
        )
    return _RULES[0]


def choices() -> dict[str, tuple[str, ...]]:
    """Every choice list a config is checked against, the task registry's included (asked of
    `tuneterm.tasks` through the rules it installs, on each call: a plug-in may have registered
    a kind since)."""
    return {**kind_rules().choices(), **STATIC}


class _Choices(Mapping[str, tuple[str, ...]]):
    """`choices()` as a read-only mapping, current on every lookup."""

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return choices()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(choices())

    def __len__(self) -> int:
        return len(choices())


CHOICES: Mapping[str, tuple[str, ...]] = _Choices()
