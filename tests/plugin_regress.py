"""A fourth kind of run, registered only in tests (TUNETERM_PLUGINS=tests.plugin_regress):
digit regression, measured by mean absolute error, where lower is better. No front end knows
it; they render it from its spec and the metric spec its runs carry in meta.json."""

from __future__ import annotations

from tuneterm import tasks
from tuneterm.tasks import Metric, TaskSpec

SPEC = tasks.register(
    TaskSpec(
        name="digit-regress",
        noun="a digit-value data set",
        summary="digit regression: predict a digit's value (tests only)",
        engine="tests.plugin_regress",
        datasets=("digit-values",),
        val_metrics=(Metric("val_mae", "MAE", higher=False),),
        test_metrics=(Metric("test_mae", "MAE", higher=False),),
        select=("val_mae", "val_loss"),
        inputs="",
    )
)
