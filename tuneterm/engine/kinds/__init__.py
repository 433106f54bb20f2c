"""Kinds of run (`run.task`): the contract between a kind and the shared engine.

A kind is a torch-free `TaskSpec` (tuneterm/tasks/) whose `engine` field names a module that
provides:

- `validate(cfg, store) -> None`: every check that can be made before a run folder is created
  (model names, weights, data files); raises `ConfigError` naming the field and value.
- `build(cfg, setup) -> Task`: the kind's data, model and task object (below), on
  `setup.device`. The shared recipe (engine/recipe.py) does the rest: the one `Trainer`
  (engine/trainer.py) trains it, the best checkpoint is tested, and the final metrics are named
  from the spec (`test_metrics`), so a kind writes no loop, no events and no metric names.
- optionally `predict(best, inputs) -> list[dict]`: the best checkpoint's predictions for
  `tuneterm predict` (inputs: a `tuneterm.tasks.predict.PredictInput`), one JSON-able dict each.

The built-in kinds live in `kinds/<kind>/`, each with the same files: `__init__.py` (the three
functions above), `data.py`, `models.py`, `task.py` (the task object), and `export.py` where
the spec names an exporter; their torch-free parts (spec, catalog, data scans) are in
`tuneterm/tasks/<kind>/`. A plug-in kind can be one module (see tests/helpers/toykind.py).
Modules are imported only when their kind is used, so an image run never imports transformers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, cast

from tuneterm.engine.kinddata import Data

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tuneterm.config import RunConfig, SpeedSection
    from tuneterm.engine.ddp import Dist
    from tuneterm.engine.techniques import Techniques
    from tuneterm.store.runs import RunStore
    from tuneterm.tasks.predict import PredictInput


@dataclass
class Setup:
    """What a kind's `build` is given: where to put the model, and the run it belongs to."""

    device: torch.device
    dist: Dist
    precision: torch.dtype | None = None  # the autocast dtype (engine/device.py); None: fp32
    store: RunStore | None = None
    log: Callable[[str], None] = print
    # Marks a point of the run's start-up for its timing ("data": the data is ready).
    phase: Callable[[str], None] = lambda name: None


@dataclass
class Started:
    """How the start of a run describes the model (the log line and meta.json)."""

    label: str  # "resnet18", "distilbert (hub:...)"
    note: str = ""  # appended to the parameter count: "; backbone stages trained: 3"
    versions: dict[str, str] = field(default_factory=dict)  # libraries beyond torch


class Task(Protocol):
    """One kind's part of training. The `Trainer` owns the model once built (it moves it to the
    device, wraps it for DDP, compiles it), so every method is given the model to use."""

    @property
    def data(self) -> Data: ...
    @property
    def model(self) -> nn.Module: ...  # as built; the Trainer's from then on
    @property
    def head_name(self) -> str: ...  # the new head's submodule ("": none): own lr, freezing
    @property
    def init(self) -> Path | None: ...  # the checkpoint the model started from, if any
    @property
    def teacher(self) -> nn.Module | None: ...  # a distillation teacher the kind loaded itself
    @property
    def streamed(self) -> bool: ...  # decoded per epoch, not held in RAM (input-bound hints)
    @property
    def workers(self) -> int: ...  # data loader processes (input-bound hints)
    @property
    def lr_group(self) -> int: ...  # the optimizer group whose lr the "train" events report
    @property
    def started(self) -> Started: ...

    def speed(self, sp: SpeedSection, model: nn.Module) -> None:
        """Apply [speed]'s CUDA switches (autotuner, TF32, channels_last) to the model."""

    def steps_per_epoch(self, shard: tuple[int, int]) -> int:
        """Training batches per epoch on this rank (`shard`: rank, world)."""
        ...

    def train_batches(self, epoch: int, start_batch: int, shard: tuple[int, int]) -> Iterator[Any]:
        """The epoch's batches on the host, from `start_batch` on (a pure function of `epoch`,
        so a resumed run replays it)."""
        ...

    def to_device(self, batch: Any) -> tuple[Any, Any]:
        """A batch as (inputs, targets) on the device, normalised for the model."""
        ...

    def loss(self, forward: Callable[..., Any], x: Any, y: Any) -> tuple[torch.Tensor, Any]:
        """(the mean loss of a batch, the logits techniques may use, or None); the Trainer
        calls it under autocast."""
        ...

    def evaluate(self, model: nn.Module, split: Any, full: bool = False) -> dict[str, Any]:
        """A split's metrics by short name ("acc", "loss", "mae": the spec's `val_acc` without
        its prefix), "n", and with `full` what the final test records (per_class, confusion,
        report). The model is in eval mode; the task runs under no_grad and its own autocast."""
        ...

    def checkpoint(self, model: nn.Module, tech: Techniques) -> dict[str, Any]:
        """The model's part of a checkpoint: "model" (weights) and what rebuilds it."""
        ...


class Kind(Protocol):
    """The engine module a `TaskSpec.engine` names."""

    def validate(self, cfg: RunConfig, store: RunStore | None) -> None: ...
    def build(self, cfg: RunConfig, setup: Setup) -> Task: ...


Predict = Callable[[Path, "PredictInput"], list[dict[str, Any]]]


def load(task: str) -> Kind:
    """The engine module of a kind (plug-ins included: `tuneterm.tasks.get` loads them)."""
    return cast("Kind", get(task))


def get(task: str) -> ModuleType:
    """The engine module of a kind, as a module (for its optional `predict`)."""
    from tuneterm import tasks

    return importlib.import_module(tasks.get(task).engine)


def __getattr__(name: str) -> Any:
    if name == "TASKS":  # run.task value -> its engine module, every registered kind
        from tuneterm import tasks

        return {n: tasks.get(n).engine for n in tasks.names()}
    raise AttributeError(name)
