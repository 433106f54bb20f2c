"""Runs written by the real tools, tiny: TensorBoard's SummaryWriter, a Hugging Face Trainer,
Lightning's CSVLogger and TensorBoardLogger, MLflow's file store (tuneterm.sources reads them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def tb_run(folder: Path, steps: int = 20, eval_every: int = 5) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as w:
        for s in range(steps):
            w.add_scalar("train/loss", 1.0 / (s + 1), s)
            w.add_scalar("train/learning_rate", 0.1, s)
            if s % eval_every == eval_every - 1:
                w.add_scalar("eval/accuracy", s / steps, s)
    return folder


def hf_run(folder: Path) -> Path:
    """Six steps of a tiny random BERT, evaluated and saved every 3, reporting to TensorBoard."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    torch.manual_seed(0)
    config = BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                        intermediate_size=8, max_position_embeddings=16, num_labels=2)  # fmt: skip
    model = BertForSequenceClassification(config)
    data = [{"input_ids": torch.randint(0, 32, (6,)), "labels": torch.tensor(i % 2)}
            for i in range(16)]  # fmt: skip
    args = TrainingArguments(
        output_dir=str(folder), max_steps=6, per_device_train_batch_size=4, logging_steps=1,
        eval_strategy="steps", eval_steps=3, save_steps=3, report_to=["tensorboard"],
        use_cpu=True,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", disable_tqdm=True,
        dataloader_num_workers=0,
    )  # fmt: skip
    Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:8]).train()
    return folder


def lightning_run(folder: Path) -> Path:
    """Two epochs of a linear model, logged by CSVLogger and TensorBoardLogger side by side."""
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    class Tiny(L.LightningModule):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__()
            self.save_hyperparameters()  # hparams.yaml, and TensorBoard's hparams plugin
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, _: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, _: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))
            self.log("val_acc", 0.5)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    trainer = L.Trainer(
        max_epochs=2, log_every_n_steps=1, accelerator="cpu", enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=str(folder),
        logger=[CSVLogger(str(folder / "csv")), TensorBoardLogger(str(folder / "tb"))],
    )  # fmt: skip
    trainer.fit(Tiny(), loader, loader)
    return folder


def mlflow_run(folder: Path) -> Path:
    import mlflow

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # the file store is what this test reads
    mlflow.set_tracking_uri(folder.resolve().as_uri())
    mlflow.set_experiment("tiny")
    with mlflow.start_run(run_name="mlf-tiny"):
        mlflow.log_param("lr", 0.1)
        for s in range(5):
            mlflow.log_metrics({"train_loss": 1.0 / (s + 1), "val_acc": s / 5}, step=s)
    return folder
