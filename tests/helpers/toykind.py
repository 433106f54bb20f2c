"""A plug-in kind of run in one module: digit regression (predict a handwritten digit's value
as a number), measured by mean absolute error, lower is better.

It is what adding a kind takes: a `TaskSpec` registered with `tuneterm.tasks.register`, whose
`engine` names a module (this one) with `validate` and `build`, and a task object for the
one Trainer; its own config table (`[regression]`) is a `KindSection` the spec names. Nothing
under cli/, tui/, runs/ or config/. Load it with
`TUNETERM_PLUGINS=helpers.toykind` and tests/ on PYTHONPATH (or `tests.helpers.toykind` from the
repository root).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from tuneterm import tasks
from tuneterm.config.section import KindSection
from tuneterm.tasks.spec import Metric, TaskSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tuneterm.config import RunConfig, SpeedSection
    from tuneterm.engine.kinds import Setup
    from tuneterm.engine.techniques import Techniques
    from tuneterm.store.runs import RunStore

NAME = "digit-regression"


class RegressionSection(KindSection):
    """[regression]: the toy kind's own options."""

    table: ClassVar[str] = "regression"

    hidden: int = Field(32, ge=1, le=1024, description="Width of the MLP's hidden layer")


SPEC = tasks.register(
    TaskSpec(
        name=NAME,
        noun="a digit regression",
        summary="toy plug-in: regress a handwritten digit's value (8x8 images, a small MLP)",
        engine=__name__,
        datasets=("digits",),
        val_metrics=(Metric("val_mae", "MAE", higher=False, pane="loss"),),
        test_metrics=(
            Metric("test_mae", "MAE", higher=False, pane="loss"),
            Metric("test_loss", "loss", higher=False, pane="loss"),
        ),
        select=("val_mae", "val_loss"),
        inputs="",
        section=RegressionSection,
    )
)


# -- the engine module: validate, build -------------------------------------------------------
def validate(cfg: RunConfig, store: RunStore | None) -> None:
    """Nothing to check beyond the config schema: the data ships with scikit-learn."""


@dataclass
class Pairs:
    """Images (N, 64) in [0, 1] and their digit values as floats."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Digits:
    train: Pairs
    val: Pairs
    test: Pairs
    classes: list[str] = field(default_factory=list)  # a regression has none
    counts: dict[str, int] = field(default_factory=dict)


def load(seed: int) -> Digits:
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16
    y = torch.tensor(d.target, dtype=torch.float32)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = n_test = len(y) // 10
    parts = order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]
    train, val, test = (Pairs(x[i], y[i]) for i in parts)
    counts = {"train": len(train), "val": len(val), "test": len(test)}
    return Digits(train, val, test, counts=counts)


class Regression:
    """The task object: an MLP regressing the digit's value with a mean squared error."""

    head_name = ""
    init: Path | None = None
    teacher: nn.Module | None = None
    streamed, workers, lr_group = False, 0, 0

    def __init__(self, cfg: RunConfig, setup: Setup) -> None:
        from torch import nn

        from tuneterm.engine.kinds import Started

        self.cfg, self.device = cfg, setup.device
        self.data = load(cfg.train.seed)
        self.model = nn.Sequential(
            nn.Linear(64, hidden := RegressionSection.of(cfg).hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.started = Started("mlp 64-32-1")

    def speed(self, sp: SpeedSection, model: nn.Module) -> None:
        pass

    def steps_per_epoch(self, ranks: tuple[int, int]) -> int:
        return -(-len(self.data.train) // self.cfg.train.batch_size)

    def train_batches(self, epoch: int, start_batch: int, ranks: tuple[int, int]) -> Iterator[Any]:
        from tuneterm.engine.data import batch_indices, epoch_order

        split = self.data.train
        order = epoch_order(len(split), self.cfg.train.seed, epoch)
        for idx in batch_indices(len(split), self.cfg.train.batch_size, order, start_batch):
            yield split.x[idx], split.y[idx]

    def to_device(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return x.to(self.device), y.to(self.device)

    def loss(self, forward: Callable[..., Any], x: torch.Tensor, y: torch.Tensor) -> Any:
        from torch.nn import functional as F

        return F.mse_loss(forward(x).squeeze(1), y), None

    def evaluate(self, model: nn.Module, split: Pairs, full: bool = False) -> dict[str, Any]:
        pred = model(split.x.to(self.device)).squeeze(1).float()
        err = pred - split.y.to(self.device)
        return {
            "mae": err.abs().mean().item(),
            "loss": err.pow(2).mean().item(),
            "n": len(split),
        }

    def checkpoint(self, model: nn.Module, tech: Techniques) -> dict[str, Any]:
        return {"model": model.state_dict(), "task": NAME}


def build(cfg: RunConfig, setup: Setup) -> Regression:
    return Regression(cfg, setup)
