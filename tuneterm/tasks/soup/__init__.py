"""A model soup (Wortsman et al., 2022): the weights of finished runs averaged into a new run.

A soup trains nothing. Its process (engine/kinds/soup/) averages its parents' best.pt weights
(all of them, or greedily), re-estimates BatchNorm statistics, and evaluates the result like
any run. Its config is its best parent's with run.task = "soup" and a [soup] table naming the
parents, so its data, model and metrics are theirs; `model_kind` says whose predictor and
exporter it uses. The parents are checked before anything is made (`ingredients.check`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneterm.tasks.soup.section import RECIPES, SoupSection
from tuneterm.tasks.spec import Metric, RunView, TaskSpec

if TYPE_CHECKING:
    from tuneterm.config import RunConfig
    from tuneterm.errors import ConfigIssue

NAME = "soup"
# The kinds whose runs can be averaged: one network whose weights mean the same in every run
# of one start. Detection is refused: its box heads and anchors were not checked to average.
KINDS: dict[str, str] = {"classify": "classify", "text": "text"}
DATASETS = ("digits", "shapes", "folder", "hf", "topics", "csv", "jsonl", "textfolder")


def model_kind(cfg: RunConfig) -> str:
    """The kind of model a soup run holds (its parents'): whose predictor and exporter."""
    return SoupSection.of(cfg).kind


def check(cfg: RunConfig) -> list[ConfigIssue]:
    """[soup] only in a soup run; in one: parents of a kind that averages, a recipe."""
    from tuneterm.errors import ConfigIssue

    sec = SoupSection.of(cfg)
    if cfg.run.task != NAME:
        if sec.parents:
            return [ConfigIssue("soup.parents", sec.parents, f'needs run.task = "{NAME}"')]
        return []
    issues = []
    if sec.kind not in KINDS:
        issues.append(
            ConfigIssue("soup.kind", sec.kind, f"soups average {' or '.join(KINDS)} runs")
        )
    if not sec.parents:
        issues.append(ConfigIssue("soup.parents", sec.parents, "give the runs to average"))
    if sec.recipe not in RECIPES:
        issues.append(ConfigIssue("soup.recipe", sec.recipe, f"one of {', '.join(RECIPES)}"))
    return issues


SPEC = TaskSpec(
    name=NAME,
    noun="soup",
    summary="a model soup: the weights of finished runs of one start averaged, no training",
    engine="tuneterm.engine.kinds.soup",
    runner="tuneterm.engine.kinds.soup.run",
    datasets=DATASETS,
    # a soup's meta.json carries its parents' metric spec; these are for a reader without it
    val_metrics=(Metric("val_acc", "acc"),),
    test_metrics=(Metric("test_acc", "acc"), Metric("test_loss", "loss", higher=False)),
    select=("val_acc", "val_loss", "val_f1"),
    checks=(check,),
    section=SoupSection,
    model_kind=model_kind,
    view=RunView(process="the soup's engine (averaging and evaluating, no training)"),
)
