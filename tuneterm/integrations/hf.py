"""Hugging Face `Trainer` under tuneterm: `TuneTermCallback` logs train and eval metrics, and on
`tuneterm stop` saves a checkpoint and ends training; `resume_checkpoint()` says where to go on.

    from tuneterm.integrations.hf import TuneTermCallback, output_dir, resume_checkpoint

    args = TrainingArguments(output_dir=output_dir("out"), save_steps=50, ...)
    trainer = Trainer(..., args=args, callbacks=[TuneTermCallback()])
    trainer.train(resume_from_checkpoint=resume_checkpoint(args.output_dir))

Outside tuneterm the callback does nothing and `resume_checkpoint` returns None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tuneterm import api


def output_dir(default: str) -> str:
    """The run's checkpoints folder under tuneterm (so `resume` finds them), else `default`."""
    where = api.checkpoint_dir()
    return str(where) if where is not None else default


def resume_checkpoint(folder: str | Path) -> str | None:
    """The newest complete `checkpoint-N` folder in `folder` when tuneterm resumes the run, else
    None (pass it to `trainer.train(resume_from_checkpoint=...)`)."""
    if not api.resuming():
        return None
    # A kill -9 may leave the newest folder half written: the Trainer writes trainer_state.json
    # last, so only folders that have it are complete.
    found = [
        p
        for p in Path(folder).glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    if not found:
        return None
    return str(max(found, key=lambda p: int(p.name.split("-")[-1])))


class TuneTermCallback(TrainerCallback):
    """Logs what the Trainer logs (loss, learning rate, eval metrics) at its global step; on a
    stop request, saves a checkpoint at the current step and ends training."""

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        api.hello()  # before the Trainer prints its first dict of metrics

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        api.install_stop_handler()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if logs and "train_runtime" not in logs:  # not the summary train() ends with
            # The epoch is where the values sit, never a curve of its own.
            values = {k: v for k, v in logs.items() if k != "epoch"}
            api.log(values, step=state.global_step, epoch=state.epoch)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if api.should_stop():
            control.should_save = True
            control.should_training_stop = True
