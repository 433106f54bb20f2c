"""`tuneterm soup`: a model soup made from finished runs (or a sweep group's), as a new run.

Everything is checked before the run folder exists (tuneterm/tasks/soup/ingredients.py); then
the soup is a detached engine process like any run (engine/kinds/soup/), so the store, its
events and statuses stay uniform: `ls`, `show`, `compare`, `predict`, `export-model` and the
TUI read it as they read a trained run. Its meta.json names its `parents`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneterm import tasks
from tuneterm.config import ConfigError, ConfigIssue, to_toml
from tuneterm.runs import launcher, sweep
from tuneterm.store.runs import NewRun, RunInfo, RunStore
from tuneterm.tasks.soup import ingredients
from tuneterm.tasks.soup.section import RECIPES


@dataclass(frozen=True)
class SoupRequest:
    """What `tuneterm soup` and the TUI's sweep screen ask for."""

    runs: tuple[str, ...] = ()  # run ids or prefixes
    group: str = ""  # or every finished run of this sweep group
    recipe: str = "greedy"
    metric: str = ""  # a val metric of the parents' kind; "": their train.metric
    name: str = ""


def group_runs(store: RunStore, group: str) -> list[str]:
    """The runs of a sweep group that can go in a soup: its completed runs."""
    table = sweep.group_table(store, group)
    done = [row.info.id for row in table.rows if row.info.status == "completed"]
    if len(done) < 2:
        raise ConfigError(
            [ConfigIssue("--sweep", group, f"has {len(done)} completed run(s); a soup needs 2")]
        )
    return done


def _check_metric(metric: str, kind: str) -> None:
    spec = tasks.get(kind)
    allowed = [m.name for m in spec.val_reported]
    if metric and metric not in allowed:
        raise ConfigError(
            [ConfigIssue("--metric", metric, f"{kind} runs report {', '.join(allowed)}")]
        )


def prepare(store: RunStore, req: SoupRequest) -> tuple[ingredients.Ingredients, NewRun]:
    """Every check, and what the run folder would be made from; nothing is created."""
    if bool(req.runs) == bool(req.group):
        raise ConfigError([ConfigIssue("RUN", list(req.runs), "give runs, or --sweep GROUP")])
    if req.recipe not in RECIPES:
        raise ConfigError([ConfigIssue("--recipe", req.recipe, f"one of {', '.join(RECIPES)}")])
    refs = list(req.runs) or group_runs(store, req.group)
    found = ingredients.check(store, ingredients.resolve(store, refs))
    _check_metric(req.metric, found.kind)
    cfg = ingredients.soup_config(found, req.recipe, req.metric, req.name)
    first = found.runs[0]
    assert first.meta is not None
    new = NewRun(
        config_toml=to_toml(cfg),
        task=cfg.run.task,
        model=first.meta.model,
        dataset=first.meta.dataset,
        epochs=1,
        metrics=dict(first.meta.metrics),
        name=req.name or f"soup-{req.recipe}",
        parent=first.id,
        parents=[r.id for r in found.runs],
        tags=[f"soup-of:{req.group}"] if req.group else [],
    )
    return found, new


def make(store: RunStore, req: SoupRequest) -> RunInfo:
    """Check, create the soup's run folder and start its process (detached)."""
    _, new = prepare(store, req)
    info = store.create(new)
    try:
        return launcher.start_created(store, info.id)
    except launcher.LaunchError:
        raise
    except BaseException:
        store.remove_half_made(info.id)
        raise
