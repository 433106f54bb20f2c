"""A tiny Lightning module that reports through tuneterm's logger and callback."""

import argparse
import time

import lightning as L
import torch

from tuneterm.integrations.lightning import TuneTermCallback, TuneTermLogger, resume_path

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=4)
ap.add_argument("--lr", type=float, default=0.05)
ap.add_argument("--sleep", type=float, default=0.0)
args = ap.parse_args()
torch.set_num_threads(1)


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).squeeze(1), y)
        self.log("loss", loss)
        time.sleep(args.sleep)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_mse", torch.nn.functional.mse_loss(self.net(x).squeeze(1), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=args.lr)


g = torch.Generator().manual_seed(0)
x = torch.randn(64, 4, generator=g)
y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
ds = torch.utils.data.TensorDataset(x, y)
loader = torch.utils.data.DataLoader(ds, batch_size=8)
trainer = L.Trainer(
    max_epochs=args.epochs,
    logger=TuneTermLogger(),
    callbacks=[TuneTermCallback()],
    log_every_n_steps=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    enable_checkpointing=False,
    accelerator="cpu",
    devices=1,
)
trainer.fit(Tiny(), loader, loader, ckpt_path=resume_path())
print("done", flush=True)
