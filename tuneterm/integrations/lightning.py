"""Lightning under tuneterm: `TuneTermLogger` sends `self.log(...)` metrics to the run, and
`TuneTermCallback` saves `last.ckpt` and ends training on `tuneterm stop`; `resume_path()` is
the checkpoint to go on from.

    from tuneterm.integrations.lightning import TuneTermCallback, TuneTermLogger, resume_path

    trainer = L.Trainer(logger=TuneTermLogger(), callbacks=[TuneTermCallback()], ...)
    trainer.fit(model, data, ckpt_path=resume_path())

The callback also saves `last.ckpt` at the end of every epoch, so a kill -9 loses at most an
epoch. Outside tuneterm both do nothing and `resume_path()` returns None.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from tuneterm import api

LAST = "last.ckpt"


def resume_path() -> str | None:
    """`RUN/checkpoints/last.ckpt` when tuneterm resumes the run and it exists, else None."""
    where = api.checkpoint_dir()
    if where is None or not api.resuming() or not (where / LAST).is_file():
        return None
    return str(where / LAST)


class TuneTermLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        api.hello()  # the run's metrics come from here, not from printed lines

    @property
    def name(self) -> str:
        return "tuneterm"

    @property
    def version(self) -> str:
        where = api.run_dir()
        return where.name if where is not None else "0"

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        values = dict(metrics)
        epoch = values.pop("epoch", None)
        api.log(values, step=step, epoch=epoch)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kw: Any) -> None:
        pass  # the run's config is the script's command line


class TuneTermCallback(Callback):
    """Stop: save `last.ckpt`, then end training at this batch. Also `last.ckpt` per epoch."""

    def __init__(self, every_epoch: bool = True) -> None:
        self.every_epoch = every_epoch

    def _save(self, trainer: Trainer) -> None:
        where: Path | None = api.checkpoint_dir()
        if where is not None:
            trainer.save_checkpoint(where / LAST)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning installs SIGTERM handlers of its own when fit starts: ours goes last.
        api.install_stop_handler()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kw: Any
    ) -> None:
        if api.should_stop() and not trainer.should_stop:
            self._save(trainer)
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_epoch and not api.should_stop():
            self._save(trainer)
