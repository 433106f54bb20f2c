"""The base of every config section (unknown keys are errors, assignments are checked), and the
two things the kinds of run plug into config with, filled by `tuneterm.tasks` when it is
imported (config sits below tasks, so it never imports them):

- `KindSection`: a kind's own TOML table (`[detect]`, `[text]`), registered by table name;
  `RunConfig` validates, writes and lists it like a built-in section;
- `KindRules` (`config.kindrules`): the checks that need the kinds' registry (the run.task
  and data.dataset choices, each kind's own checks), installed with `use_kinds`.

Every entry point (the CLI, the TUI, the engine, runs/) imports `tuneterm.tasks`, which
registers the built-in kinds and installs their rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KindSection(Section):
    """A kind's own table; `table` is its TOML name. Read it from a config with `of`."""

    table: ClassVar[str]

    @classmethod
    def of(cls, cfg: BaseModel) -> Self:
        """This section of `cfg` (its defaults when `cfg` was made before it was registered)."""
        found = (cfg.model_extra or {}).get(cls.table)
        return found if isinstance(found, cls) else cls()


_SECTIONS: dict[str, type[KindSection]] = {}


def register_section(section: type[KindSection]) -> None:
    """Add (or replace) a kind's table (`tuneterm.tasks.register` refuses a built-in's name)."""
    _SECTIONS[section.table] = section


def kind_sections() -> Mapping[str, type[KindSection]]:
    """{table name: section} of every registered kind's table, in registration order."""
    return dict(_SECTIONS)
