"""Task kinds: what a run learns (`run.task`). A registry, like the techniques.

Each kind is one module here that provides two functions:

- `validate(cfg, store)`: every check that can be made before a run folder is created
  (model names, weights, data files); raises `ConfigError` naming the field and value.
- `train(engine, cfg, resume) -> int`: the engine's body for this kind: build data and model,
  train (fit), test, record the final metrics, set the final status; returns the exit code.
- optionally `predict(best, inputs) -> list[dict]`: the best checkpoint's predictions for
  `tuneterm predict` (inputs: a `tuneterm.runs.predict.PredictInput`), one JSON-able dict per input.

Modules are imported only when their kind is used, so a vision run never imports transformers.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# run.task value -> module (under tuneterm.engine.tasks) that implements it
TASKS: dict[str, str] = {
    "classify": "classify",
    "detect": "detect",
    "text-classify": "text",
}


def get(task: str) -> ModuleType:
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return importlib.import_module(f"{__name__}.{TASKS[task]}")
