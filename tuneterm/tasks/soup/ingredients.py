"""The parents of a soup, checked before anything is made (torch-free).

Weights average into a better model only when they mean the same thing: the same network (its
architecture, head, classes and adapters), fine-tuned from the same start, on the same split
of the same data (so the soup's validation and test images were held out from every parent).
Each rule names the run that breaks it and what differs; nothing is created.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig, from_dict, run_config, to_toml
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.tasks.soup import KINDS, NAME
from tuneterm.tasks.soup.section import RECIPES

# config keys whose values may differ between ingredients: how each run trained, not what
DATA_FREE = ("augment", "workers", "cache_gb", "split_seed")
REASONS = {
    "detect": "detection runs are refused: box heads, anchors and their post-processing were "
    "not checked to average into a working detector",
    "script": "script runs are refused: tuneterm does not know what their checkpoints hold",
    NAME: "a soup is not an ingredient: give its parents instead",
}


@dataclass(frozen=True)
class Ingredients:
    """Parents that may be averaged: best first is not implied (the soup's engine ranks them
    on validation); `configs` by run id."""

    kind: str
    runs: list[RunInfo]
    configs: dict[str, RunConfig]


def _issue(run_id: str, reason: str) -> ConfigError:
    return ConfigError([ConfigIssue("RUN", run_id, reason)])


def resolve(store: RunStore, refs: list[str]) -> list[RunInfo]:
    """Run ids or unique prefixes, each once, at least two."""
    infos: dict[str, RunInfo] = {}
    for ref in refs:
        info = store.info(store.resolve(ref))
        infos.setdefault(info.id, info)
    if len(infos) < 2:
        raise ConfigError([ConfigIssue("RUN", refs, "a soup needs at least two different runs")])
    return list(infos.values())


def _finished(store: RunStore, info: RunInfo) -> None:
    if info.status != "completed" or info.meta is None:
        raise _issue(info.id, f"is {info.status}; only completed runs can be averaged")
    if not (store.checkpoint_dir(info.id) / "best.pt").is_file():
        raise _issue(info.id, "has no checkpoints/best.pt")
    if info.meta.task not in KINDS:
        reason = REASONS.get(info.meta.task, f"{info.meta.task} runs cannot be averaged")
        raise _issue(info.id, reason)


def architecture(cfg: RunConfig) -> dict[str, Any]:
    """What makes two runs' weights the same network."""
    out: dict[str, Any] = {
        "run.task": cfg.run.task,
        "model.source": cfg.model.source,
        "model.name": cfg.model.name,
        "model.dropout": cfg.model.dropout,
        "head": cfg.head.model_dump(),
        "lora.enabled": cfg.lora.enabled,
    }
    if cfg.lora.enabled:  # adapters average only at the same rank
        out["lora.rank"] = cfg.lora.rank
    text = (cfg.model_extra or {}).get("text")
    if text is not None:
        out["text.model"] = getattr(text, "model", "")
    return out


def data_split(cfg: RunConfig) -> dict[str, Any]:
    """What decides which images are held out: the data set and its split, not augmentation."""
    data = cfg.data.model_dump()
    out = {f"data.{k}": v for k, v in data.items() if k not in DATA_FREE}
    seed = cfg.data.split_seed if cfg.data.split_seed >= 0 else cfg.train.seed
    out["data.split_seed (or train.seed)"] = seed
    return out


def start(info: RunInfo, cfg: RunConfig) -> dict[str, Any]:
    """The starting weights: the hash the engine recorded, else (runs made before it was
    recorded) the config keys that choose them."""
    assert info.meta is not None
    if info.meta.init_hash:
        return {"starting weights (meta.json init_hash)": info.meta.init_hash}
    return {"model.weights": cfg.model.weights, "model.init": cfg.model.init}


def _differs(
    name: str, mine: dict[str, Any], theirs: dict[str, Any], first: str
) -> ConfigError | None:
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            return _issue(
                name,
                f"{key} is {mine.get(key)!r} here but {theirs.get(key)!r} in {first}; "
                "a soup averages runs of one network, one start and one data split",
            )
    return None


def check(store: RunStore, infos: list[RunInfo]) -> Ingredients:
    """Every rule, in order; ConfigError naming the first run that breaks one."""
    for info in infos:
        _finished(store, info)
    configs = {i.id: run_config(store, i.id) for i in infos}
    first = infos[0]
    ref = configs[first.id]
    for info in infos[1:]:
        cfg = configs[info.id]
        assert info.meta is not None and first.meta is not None
        if info.meta.classes != first.meta.classes:
            raise _issue(
                info.id, f"has classes {info.meta.classes} but {first.id} {first.meta.classes}"
            )
        mine_start, first_start = start(info, cfg), start(first, ref)
        if set(mine_start) != set(first_start):  # one run recorded its hash, one is older
            mine_start = {"model.weights": cfg.model.weights, "model.init": cfg.model.init}
            first_start = {"model.weights": ref.model.weights, "model.init": ref.model.init}
        for mine, theirs in (
            (architecture(cfg), architecture(ref)),
            (mine_start, first_start),
            (data_split(cfg), data_split(ref)),
        ):
            error = _differs(info.id, mine, theirs, first.id)
            if error is not None:
                raise error
    return Ingredients(first.meta.task if first.meta else "", infos, configs)


def soup_config(ingredients: Ingredients, recipe: str, metric: str, name: str = "") -> RunConfig:
    """The soup's config: its first parent's, with run.task = "soup" and the [soup] table."""
    if recipe not in RECIPES:
        raise ConfigError([ConfigIssue("--recipe", recipe, f"one of {', '.join(RECIPES)}")])
    first = ingredients.runs[0].id
    data = tomllib.loads(to_toml(ingredients.configs[first]))
    run = data.setdefault("run", {})
    run.update(task=NAME, name=name, tags=[])
    data["soup"] = {
        "kind": ingredients.kind,
        "parents": [i.id for i in ingredients.runs],
        "recipe": recipe,
        "metric": metric,
    }
    # How the parents trained: a soup trains nothing, and an EMA copy, a teacher or early
    # stopping would only be built to be ignored.
    data.setdefault("ema", {})["enabled"] = False
    data.setdefault("early_stop", {})["enabled"] = False
    data.setdefault("distill", {})["teacher"] = ""
    return from_dict(data)
