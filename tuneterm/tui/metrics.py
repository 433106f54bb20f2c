"""What the panes draw for a run, read from its metric spec (meta.json `metrics`, or its kind's
registered spec for older runs): never from its kind's name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tuneterm import tasks
from tuneterm.store import RunInfo
from tuneterm.tasks import Metric, MetricSpec, RunView

# the colours of a pane's val metrics, in the spec's order (train loss is cyan)
COLOURS = {"acc": ("green", "yellow", "cyan", "magenta", "blue", "red"),
           "loss": ("magenta", "yellow", "green", "blue", "red")}  # fmt: skip


def colour(pane: str, index: int) -> str:
    """The colour of a pane's `index`th val metric."""
    colours = COLOURS.get(pane, COLOURS["acc"])
    return colours[index % len(colours)]


def spec_of(info: RunInfo | None) -> MetricSpec:
    meta = info.meta if info else None
    if meta is None:
        return tasks.metric_spec_of("", None)
    spec: MetricSpec = tasks.metric_spec_of_run(meta)
    return spec


def view_of(info: RunInfo | None) -> RunView:
    """How the run's kind is shown (its `TaskSpec.view`); the engine's way for an unknown kind."""
    kind = tasks.find(info.meta.task) if info and info.meta else None
    return kind.view if kind else RunView()


def classes_of(info: RunInfo | None) -> int:
    """How many classes the run has; 0 while not known."""
    return len(info.meta.classes) if info and info.meta else 0


def plotted(info: RunInfo | None, pane: str) -> list[Metric]:
    """The val metrics a pane ("acc", "loss") draws for this run."""
    return spec_of(info).plotted(pane, classes_of(info))


def val_curves(info: RunInfo | None) -> list[Metric]:
    """What the Accuracy pane draws: the run's accuracy-like val metrics; for a run that
    reports none (a script's val loss, eval_*), every val metric it reports."""
    return plotted(info, "acc") or [m for m in spec_of(info).val if m.shown_for(classes_of(info))]


def val_label(label: str) -> str:
    """`val acc` for the engine's `val_acc` (labelled `acc`); a script's own name that says
    its split already (`val loss`, `eval f1`) is shown as it is, not as `val val loss`."""
    return label if label.startswith(("val ", "eval ", "test ")) else f"val {label}"


def test_metrics(info: RunInfo | None) -> list[Metric]:
    """The final test metrics worth showing for this run (top-5 needs more than 5 classes)."""
    classes = classes_of(info)
    return [m for m in spec_of(info).test if m.shown_for(classes)]


def test_value(metric: Metric, test: Mapping[str, Any], final: Mapping[str, Any]) -> Any:
    """A test metric from the `test` event (keys without the split: "acc") or meta.json's
    `final` ("test_acc", or "val_acc" when the run had no test split)."""
    split = str(test.get("split", "test"))
    prefix, _, rest = metric.name.partition("_")
    # "test_acc" -> "acc"; a technique's figure ("target_acc") is read from `final` by name
    key = rest if prefix in ("test", "val") and rest else metric.name
    for value in (test.get(key), final.get(f"{split}_{key}"), final.get(metric.name)):
        if value is not None:
            return value
    return None


def best_last(values: np.ndarray, metric: Metric) -> tuple[float, float]:
    """The best value (in the metric's direction) and the last one, NaN when there is none."""
    ok = values[~np.isnan(values)] if len(values) else values
    if not len(ok):
        return math.nan, math.nan
    return (float(ok.max()) if metric.higher else float(ok.min())), float(ok[-1])


def throughput_unit(info: RunInfo | None) -> str:
    """What the engine's examples/s counts: the kind's inputs (images, texts)."""
    kind = tasks.find(info.meta.task) if info and info.meta else None
    inputs = kind.inputs if kind and kind.inputs else "images"
    return "img/s" if inputs == "images" else f"{inputs}/s"
