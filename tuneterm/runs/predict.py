"""`tuneterm predict`: a run's best checkpoint applied to new inputs, as JSON.

Each task kind supplies its predictor: a `predict(best, inputs)` function in its module under
`tuneterm.engine.kinds` (classify: top-k classes; detect: boxes, labels and scores). torch is
imported by the predictor only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tuneterm.config import run_config
from tuneterm.store.runs import RunStore
from tuneterm.tasks.predict import PredictError, PredictInput

__all__ = ["PredictError", "PredictInput", "best_checkpoint", "predict"]


def best_checkpoint(store: RunStore, run_id: str) -> Path:
    best = store.checkpoint_dir(run_id) / "best.pt"
    if not best.is_file():
        status = store.info(run_id).status
        raise PredictError(
            f"run {run_id} ({status}) has no best checkpoint yet: it is written after the "
            "first epoch's validation"
        )
    return best


def _check_inputs(run_id: str, task: str, inputs: PredictInput) -> None:
    """The inputs fit the run's kind: texts for a kind that reads texts, images otherwise."""
    from tuneterm import tasks

    if inputs.top_k < 1:
        raise PredictError(f"--top-k = {inputs.top_k}: must be >= 1")
    if inputs.score_threshold is not None and not 0.0 <= inputs.score_threshold <= 1.0:
        raise PredictError(f"--threshold = {inputs.score_threshold}: must be in [0, 1]")
    takes = tasks.get(task).inputs  # what this kind's predictor reads
    if takes == "texts" and not inputs.texts:
        raise PredictError(f'run {run_id} is a {task} run: give one or more --text "..."')
    if takes == "texts" and inputs.images:
        raise PredictError(f"run {run_id} is a {task} run: it reads --text, not image files")
    if takes != "texts" and inputs.texts:
        texts = [n for n in tasks.names() if tasks.get(n).inputs == "texts"]
        raise PredictError(
            f"run {run_id} is a {task} run: --text needs a run of {' or '.join(texts)}"
        )
    if not takes:
        raise PredictError(f"run {run_id}: {task} runs have no predictor")
    for path in inputs.images:
        if not path.is_file():
            raise PredictError(f"{path}: no such image file")


def predict(store: RunStore, run_id: str, inputs: PredictInput) -> dict[str, Any]:
    from tuneterm import tasks
    from tuneterm.engine import kinds as engine_tasks

    cfg = run_config(store, run_id)
    task = tasks.model_kind(cfg)  # a soup's model is its parents' kind
    _check_inputs(run_id, task, inputs)
    best = best_checkpoint(store, run_id)
    predictor = getattr(engine_tasks.get(task), "predict", None)
    if predictor is None:
        raise PredictError(f"run {run_id}: {task} runs have no predictor")
    if inputs.score_threshold is None:  # the kind's own default, where its section has one
        default = getattr(getattr(cfg, task, None), "score_threshold", None)
        if isinstance(default, int | float):
            inputs = replace(inputs, score_threshold=float(default))
    return {
        "run": run_id,
        "task": task,
        "checkpoint": str(best),
        "predictions": predictor(best, inputs),
    }
