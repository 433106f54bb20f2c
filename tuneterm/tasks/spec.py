"""What a kind of run is, without torch: its name, data sets, metrics, and static checks.

A `TaskSpec` is the one place that says what a kind measures and which way is better. The
config checks, the CLI (`ls`, `show`, `compare`, `sweep-best`, `predict`, `models`) and every
TUI pane read it; the launcher hands `TaskSpec.metric_spec()` to the store, which writes it into
the run's `meta.json` when it creates the run, so a reader can render any run, of any kind,
from data alone (`tuneterm.tasks.metric_spec_of_run`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tuneterm.config import RunConfig
    from tuneterm.config.section import KindSection
    from tuneterm.errors import ConfigIssue
    from tuneterm.store.runs import RunStore


@dataclass(frozen=True)
class Metric:
    """One number a run reports: in its `val` events (`val_*`) or its final test (`test_*`)."""

    name: str  # the event field / meta key, e.g. "val_acc", "test_map50"
    label: str  # its short name: "acc", "top-5", "mAP@.5", "F1" (the TUI adds "val"/"test")
    higher: bool = True  # which way is better
    fmt: str = ".4f"  # a format spec for the value: ".1%" for a fraction shown as percent
    pane: str = "acc"  # the TUI pane that plots it: "acc", "loss", or "" (not plotted)
    min_classes: int = 0  # shown only for runs with more classes than this (top-5 needs > 5)

    def format(self, value: Any) -> str:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "-" if value is None else str(value)
        if math.isnan(value):
            return "-"
        return format(value, self.fmt)

    def shown_for(self, classes: int) -> bool:
        """Is it worth showing for a run with `classes` classes (0: not known yet)?"""
        return not classes or classes > self.min_classes

    def better(self, a: float, b: float) -> bool:
        """Is `a` better than `b`?"""
        return a > b if self.higher else a < b

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "higher": self.higher,
            "fmt": self.fmt,
            "pane": self.pane,
            "min_classes": self.min_classes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metric:
        return cls(
            name=str(d["name"]),
            label=str(d.get("label", d["name"])),
            higher=bool(d.get("higher", True)),
            fmt=str(d.get("fmt", ".4f")),
            pane=str(d.get("pane", "acc")),
            min_classes=int(d.get("min_classes", 0)),
        )


@dataclass(frozen=True)
class RunView:
    """How the front ends show a kind's runs where kinds differ. The TUI panes read these
    flags (through the run's `task` in meta.json), never the kind's name."""

    # Speed: the kind's inputs per second and the data wait, as the engine measures them; or
    # steps per second and the step time, from the step and time of the train events
    throughput: Literal["inputs", "steps"] = "inputs"
    # Config: config.toml under the training pipeline it resolves to; or the command the run
    # runs and its [script] table
    setup: Literal["pipeline", "command"] = "pipeline"
    # Test: the figures of the test split evaluated at the end; or the last value of each
    # metric reported and the best of the run's metric
    final: Literal["test", "last"] = "test"
    process: str = "engine and its data workers"  # what the run's CPU and RSS are of


# A check a kind makes of a config without torch: returns the issues it finds.
StaticCheck = Callable[["RunConfig"], list["ConfigIssue"]]
# A check that may import the kind's libraries (model names, data files): raises ConfigError.
LaunchCheck = Callable[["RunConfig", "RunStore | None"], None]


@dataclass(frozen=True)
class TaskSpec:
    """A kind of run (`run.task`): everything the front ends need to know about it."""

    name: str  # the run.task value
    noun: str  # what its data sets are called in messages: "a detection data set"
    summary: str  # one line for help texts
    engine: str  # its engine module: `validate`, `build` (see tuneterm/engine/kinds/__init__.py)
    datasets: tuple[str, ...]  # what data.dataset may be for this kind
    val_metrics: tuple[Metric, ...]  # fields of its `val` events
    test_metrics: tuple[Metric, ...]  # its final test metrics (meta.json `final`)
    select: tuple[str, ...]  # what train.metric may be; the first is what "val_acc" means
    loss: Metric | None = Metric("val_loss", "loss", higher=False, pane="loss")  # None: no val loss
    model_field: str = "model.name"  # the config key that names the model
    inputs: str = "images"  # what `predict` takes: "images", "texts", or "" (no predict)
    # "module:function" returning {model name: about} for `tuneterm models` (imported lazily)
    catalog: str = ""
    # "module:function" wrapping best.pt for `tuneterm export-model` ("": cannot be exported)
    exporter: str = ""
    # the module `tuneterm lr-find` runs (`python -m MODULE CONFIG RUNS_ROOT ...`, printing the
    # curve as JSON: see tuneterm/runs/lr_find.py); "": the kind has no LR range test
    lr_finder: str = ""
    multi_gpu: bool = False  # trains through torchrun + DDP with train.gpus > 1
    # config keys this kind refuses unless left at the default given here
    refuses: Mapping[str, Any] = field(default_factory=dict)
    # torch-free checks, run on every config whatever its kind: a kind checks its own options
    # and refuses its own data sets and metrics in runs of another kind
    checks: tuple[StaticCheck, ...] = ()
    extras: tuple[str, ...] = ()  # packages it needs beyond the core: (import name, ...)
    extra_name: str = ""  # the pip extra that brings them: pip install 'tuneterm[extra]'
    # The module a run's process runs (`python -m <runner> RUN_DIR [--resume]`); "" is the
    # engine. A kind with a runner of its own reports the metrics it finds (meta.json's spec
    # grows as they appear) instead of declaring them here.
    runner: str = ""
    view: RunView = RunView()
    # the kind's own config table ([detect]), registered with the kind; None: it has none
    section: type[KindSection] | None = None
    # A kind whose runs hold another kind's model (a soup): that kind, from a run's config.
    # Its predictor, exporter and inputs serve the run. None: the kind's own.
    model_kind: Callable[[RunConfig], str] | None = None

    # -- metrics ---------------------------------------------------------------------------
    @property
    def metrics(self) -> tuple[Metric, ...]:
        """Every metric the kind reports: val (loss included), then test."""
        return (*self.val_reported, *self.test_metrics)

    @property
    def val_reported(self) -> tuple[Metric, ...]:
        """The fields of the kind's `val` events, its val loss included."""
        return (*self.val_metrics, *((self.loss,) if self.loss else ()))

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        return guess_metric(name)

    def best_metric(self, configured: str) -> str:
        """The metric that picks best.pt for a run configured with train.metric."""
        return configured if configured in self.select else self.select[0]

    def metric_spec(self, configured: str) -> dict[str, Any]:
        """What the engine writes into meta.json: readers render the run from it alone."""
        best = self.best_metric(configured)
        return {
            "task": self.name,
            "best": best,
            "higher": self.metric(best).higher,
            "val": [m.as_dict() for m in self.val_reported],
            "test": [m.as_dict() for m in self.test_metrics],
        }


def guess_metric(name: str) -> Metric:
    """A metric no spec declares (an old run, a script's own): loss-like names are lower."""
    low = name.lower()
    lower = any(w in low for w in ("loss", "err", "mae", "mse", "rmse", "perplexity", "wer"))
    pane = "loss" if "loss" in low else "acc"
    return Metric(name, name.replace("_", " "), higher=not lower, pane=pane)


@dataclass(frozen=True)
class MetricSpec:
    """A run's metrics as its meta.json says (or its kind's spec, for runs that predate it)."""

    task: str
    best: str
    higher: bool
    val: tuple[Metric, ...]
    test: tuple[Metric, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricSpec:
        return cls(
            task=str(d.get("task", "")),
            best=str(d.get("best", "val_acc")),
            higher=bool(d.get("higher", True)),
            val=tuple(Metric.from_dict(m) for m in d.get("val", [])),
            test=tuple(Metric.from_dict(m) for m in d.get("test", [])),
        )

    def metric(self, name: str) -> Metric:
        for m in (*self.val, *self.test):
            if m.name == name:
                return m
        return guess_metric(name)

    def plotted(self, pane: str, classes: int = 0) -> list[Metric]:
        """The val metrics drawn in a TUI pane ("acc" or "loss") for a run with `classes`."""
        return [m for m in self.val if m.pane == pane and m.shown_for(classes)]
