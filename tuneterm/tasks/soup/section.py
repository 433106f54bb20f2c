"""The `[soup]` table of a soup run's config: read it with `SoupSection.of(cfg)`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from tuneterm.config.section import KindSection

Recipe = Literal["uniform", "greedy"]
RECIPES: tuple[str, ...] = ("uniform", "greedy")


class SoupSection(KindSection):
    """[soup]: the runs a model soup averages, and how (tuneterm soup)."""

    table: ClassVar[str] = "soup"

    kind: str = Field("", description='For run.task = "soup": the kind of its parent runs')
    parents: list[str] = Field(
        default_factory=list, description="The run ids whose best.pt weights are averaged"
    )
    recipe: Recipe = Field(
        "greedy",
        description="uniform: the mean of every parent; greedy: the parents best first, each "
        "kept only if the soup's validation metric does not get worse",
    )
    metric: str = Field(
        "", description="The validation metric greedy goes by ('': the parents' train.metric)"
    )
