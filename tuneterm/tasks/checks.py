"""The config checks that need the kinds' registry, made here (config sits below tasks and
asks for them through `config.section.KindRules`, which `tuneterm.tasks` installs): the
run.task and data.dataset choices, each kind's own checks, the packages a kind needs, and the
model a run trains."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tuneterm.config.checks import installed
from tuneterm.errors import ConfigIssue

if TYPE_CHECKING:
    from tuneterm.config import RunConfig
    from tuneterm.tasks.spec import TaskSpec


class RegistryRules:
    """`config.section.KindRules` over the registry's lookups (tuneterm.tasks passes them)."""

    def __init__(
        self,
        names: Callable[[], tuple[str, ...]],
        get: Callable[[str], TaskSpec],
        datasets: Callable[[], tuple[str, ...]],
    ) -> None:
        self._names, self._get, self._datasets = names, get, datasets

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {"run.task": self._names(), "data.dataset": self._datasets()}

    def structural_issues(self, cfg: RunConfig) -> list[ConfigIssue]:
        t = cfg.train
        if (t.gpus > 1 or cfg.dist.nnodes > 1) and not self._get(cfg.run.task).multi_gpu:
            return [
                ConfigIssue(
                    "train.gpus", t.gpus, f'run.task = "{cfg.run.task}" trains in one process'
                )
            ]
        return []

    def kind_issues(self, cfg: RunConfig) -> list[ConfigIssue]:
        """What the kinds say of this config: its data set belongs to its kind, its metrics
        are ones its kind reports, and every kind's own checks (tuneterm/tasks/<kind>/)."""
        spec = self._get(cfg.run.task)
        issues = _dataset_issues(cfg, spec, [self._get(n) for n in self._names()])
        for other in (self._get(n) for n in self._names()):
            for check in other.checks:
                issues += check(cfg)
        return issues + _metric_issues(cfg, spec, issues)


def _dataset_issues(cfg: RunConfig, spec: TaskSpec, every: list[TaskSpec]) -> list[ConfigIssue]:
    ds = cfg.data.dataset
    if ds in spec.datasets:
        return []
    owners = [s for s in every if ds in s.datasets]
    if owners and cfg.run.task == "classify":
        reason = f'a {owners[0].noun} data set; set run.task = "{owners[0].name}"'
    else:
        reason = (
            f"not a {spec.noun} data set; for run.task = {spec.name} use {', '.join(spec.datasets)}"
        )
    return [ConfigIssue("data.dataset", ds, reason)]


def _metric_issues(cfg: RunConfig, spec: TaskSpec, found: list[ConfigIssue]) -> list[ConfigIssue]:
    """train.metric and early_stop.metric are ones the kind reports (unless a kind's own
    check already named them)."""
    named = {i.field for i in found}
    issues = []
    m = cfg.train.metric
    if m != "val_acc" and m not in spec.select and "train.metric" not in named:
        issues.append(
            ConfigIssue("train.metric", m, f"{spec.name} runs pick by {', '.join(spec.select)}")
        )
    reported = {r.name for r in spec.val_reported}
    es = cfg.early_stop.metric
    if cfg.early_stop.enabled and es not in reported and "early_stop.metric" not in named:
        issues.append(
            ConfigIssue(
                "early_stop.metric", es, f"{spec.name} runs report {', '.join(sorted(reported))}"
            )
        )
    return issues


def missing_packages(cfg: RunConfig, spec: TaskSpec) -> list[ConfigIssue]:
    """Optional dependencies the config needs and this machine lacks (the install extras).
    Checked at launch, not when a config is read: a run made elsewhere stays readable."""
    issues = []
    missing = [p for p in spec.extras if not installed(p)]
    if missing:
        issues.append(
            ConfigIssue(
                "run.task",
                spec.name,
                f"needs {' and '.join(missing)}, not installed here: "
                f"pip install 'tuneterm[{spec.extra_name}]'",
            )
        )
    if cfg.data.dataset == "hf" and not installed("datasets"):
        issues.append(
            ConfigIssue(
                "data.dataset",
                "hf",
                "needs datasets, not installed here: pip install 'tuneterm[datasets]'",
            )
        )
    if cfg.lora.enabled and not installed("peft"):
        issues.append(
            ConfigIssue(
                "lora.enabled", True, "needs peft, not installed here: pip install 'tuneterm[lora]'"
            )
        )
    return issues


def model_label(cfg: RunConfig, spec: TaskSpec) -> str:
    """What the run trains, for its id and listings: model.name, or text.model's last part."""
    section, key = spec.model_field.split(".")
    name = str(getattr(cfg.section(section), key))
    return name.rstrip("/").rsplit("/", 1)[-1] or name
