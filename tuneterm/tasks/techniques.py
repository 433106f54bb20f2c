"""Metrics that a technique adds to a run of any kind, declared without torch.

A run's metric spec (meta.json `metrics`) is its kind's spec plus these, so the TUI's panes,
its compare screen and `tuneterm compare` show them with no technique-specific code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneterm.tasks.spec import Metric

if TYPE_CHECKING:
    from tuneterm.config import RunConfig

# Feature-level domain adaptation (engine/techniques/adapt.py): the domain classifier's loss
# and accuracy on each epoch's training batches (`val` events); near 50% = domains confused.
DOMAIN_VAL = (
    Metric("domain_acc", "domain acc", higher=False, fmt=".1%"),
    Metric("domain_loss", "domain loss", higher=True, pane="loss"),
)
# Target-domain accuracy (meta.json `final`), when the target has labels.
TARGET_TEST = (Metric("target_acc", "target acc", fmt=".1%"),)
SOURCE_ONLY_TEST = (Metric("target_acc_source_only", "target acc (source only)", fmt=".1%"),)


# adapt.method -> (val metrics, test metrics) its runs report
ADAPT_METRICS: dict[str, tuple[tuple[Metric, ...], tuple[Metric, ...]]] = {
    "adabn": ((), (*TARGET_TEST, *SOURCE_ONLY_TEST)),
    "dann": (DOMAIN_VAL, TARGET_TEST),
    "cdan": (DOMAIN_VAL, TARGET_TEST),
    "coral": (DOMAIN_VAL, TARGET_TEST),
    "mmd": (DOMAIN_VAL, TARGET_TEST),
}


def technique_metrics(cfg: RunConfig) -> tuple[tuple[Metric, ...], tuple[Metric, ...]]:
    """(val metrics, test metrics) the techniques of `cfg` add to its kind's."""
    return ADAPT_METRICS.get(cfg.adapt.method, ((), ()))


def with_techniques(spec: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """A kind's `metric_spec` dict with the metrics of `cfg`'s techniques appended."""
    val, test = technique_metrics(cfg)
    return {
        **spec,
        "val": [*spec["val"], *(m.as_dict() for m in val)],
        "test": [*spec["test"], *(m.as_dict() for m in test)],
    }
