"""The task kinds (`run.task`): a registry of torch-free `TaskSpec`s.

Built-in kinds are registered here; a plug-in registers its own with `register(spec)` from a
module named in `TUNETERM_PLUGINS` (comma-separated module names, imported by every tuneterm
process: the CLI, the TUI, the engine) or in the `tuneterm.tasks` entry-point group. Adding a
kind means a spec (a built-in's in `tasks/<kind>/`, listed in `_builtin` below), its own config
table if it has options (a `config.KindSection` the spec names), plus the engine module it
names (`engine/kinds/<kind>/`), and nothing else.

Importing this package also installs the kinds' rules into config (`config.kindrules`): the
run.task and data.dataset choices and the checks that need the kinds (`tasks/checks.py`).

Names are looked up through `config.renamed.kind_name`, so a kind's old name (`text-classify`)
finds it.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuneterm.config.kindrules import use_kinds
from tuneterm.config.renamed import kind_name
from tuneterm.config.schema import RunConfig
from tuneterm.config.section import register_section
from tuneterm.errors import ConfigIssue
from tuneterm.tasks import checks, classify, detect, script, soup, text
from tuneterm.tasks.spec import Metric, MetricSpec, RunView, TaskSpec, guess_metric
from tuneterm.tasks.techniques import with_techniques

if TYPE_CHECKING:
    from tuneterm.store.meta import RunMeta

__all__ = [
    "Metric",
    "MetricSpec",
    "RunView",
    "TaskSpec",
    "all_datasets",
    "get",
    "missing_packages",
    "model_kind",
    "model_label",
    "names",
    "register",
]

_REGISTRY: dict[str, TaskSpec] = {}
_plugins_loaded = False


def register(spec: TaskSpec) -> TaskSpec:
    """Add (or replace) a kind, and its own config table if it has one. Returns the spec, so a
    module can keep it as a constant."""
    if spec.section is not None:
        if spec.section.table in RunConfig.model_fields:
            raise ValueError(f"[{spec.section.table}] is a built-in section of the run config")
        register_section(spec.section)
    _REGISTRY[spec.name] = spec
    return spec


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in filter(
        None, (m.strip() for m in os.environ.get("TUNETERM_PLUGINS", "").split(","))
    ):
        importlib.import_module(name)
    if os.environ.get("TUNETERM_ENTRY_POINTS", "1") != "0":
        from importlib.metadata import entry_points

        for ep in entry_points(group="tuneterm.tasks"):
            ep.load()


def names() -> tuple[str, ...]:
    _load_plugins()
    return tuple(_REGISTRY)


def get(name: str) -> TaskSpec:
    """The spec of a kind; KeyError naming the known kinds (and a close match) otherwise."""
    _load_plugins()
    name = kind_name(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise KeyError(f"unknown task {name!r}; {hint}known: {', '.join(_REGISTRY)}") from None


def find(name: str) -> TaskSpec | None:
    _load_plugins()
    return _REGISTRY.get(kind_name(name))


def models_of(spec: TaskSpec) -> dict[str, str]:
    """{model name: what it is} for `tuneterm models --task KIND`: the function the kind's
    `catalog` names ({} when it names none), imported only when asked."""
    if not spec.catalog:
        return {}
    module, _, func = spec.catalog.partition(":")
    about = getattr(importlib.import_module(module), func)()
    return {str(k): str(v) for k, v in dict(about).items()}


def all_datasets() -> tuple[str, ...]:
    """Every data set some kind reads, in registration order, each once."""
    out: dict[str, None] = {}
    for spec in (get(n) for n in names()):
        out.update(dict.fromkeys(spec.datasets))
    return tuple(out)


def kind_of_dataset(dataset: str) -> list[str]:
    return [n for n in names() if dataset in get(n).datasets]


def metric_spec_of(
    task: str, metrics: Mapping[str, Any] | None, configured: str = ""
) -> MetricSpec:
    """A run's metric spec: from its meta.json when the engine wrote one, else from its kind's
    registered spec (runs made before meta.json carried it), else a guess from the name."""
    if metrics:
        return MetricSpec.from_dict(metrics)
    spec = find(task)
    if spec is None:
        return MetricSpec(
            task, configured or "val_acc", guess_metric(configured or "val_acc").higher, (), ()
        )
    return MetricSpec.from_dict(spec.metric_spec(configured or spec.select[0]))


def metric_spec_of_run(meta: RunMeta) -> MetricSpec:
    """The metric spec of a run from its meta.json (older runs: from its kind's spec)."""
    return metric_spec_of(meta.task, meta.metrics, str(meta.best.get("metric", "")))


def run_metric_spec(cfg: RunConfig) -> dict[str, Any]:
    """What meta.json records for a run of `cfg`: its kind's metrics plus its techniques'."""
    return with_techniques(get(cfg.run.task).metric_spec(cfg.train.metric), cfg)


def model_kind(cfg: RunConfig) -> str:
    """The kind of model a run holds: its own kind, or the one its kind says (a soup's
    parents'). `predict` and `export-model` serve the run as that kind."""
    spec = get(cfg.run.task)
    return spec.model_kind(cfg) if spec.model_kind is not None else spec.name


def missing_packages(cfg: RunConfig) -> list[ConfigIssue]:
    """What the config needs that this machine lacks: its kind's extras, datasets, peft."""
    return checks.missing_packages(cfg, get(cfg.run.task))


def model_label(cfg: RunConfig) -> str:
    """What the run trains, for its id and listings: model.name, or text.model's last part."""
    return checks.model_label(cfg, get(cfg.run.task))


def _builtin() -> None:
    for spec in (classify.SPEC, detect.SPEC, text.SPEC, script.SPEC, soup.SPEC):
        register(spec)
    use_kinds(checks.RegistryRules(names, get, all_datasets))


_builtin()
