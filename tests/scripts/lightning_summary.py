"""A small Lightning module that reports through tuneterm's logger while Lightning prints its
own start-up lines (model summary, parameter counts) and progress bar, with metrics in it."""

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from tuneterm.integrations.lightning import TuneTermCallback, TuneTermLogger

torch.set_num_threads(1)


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
        )

    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).squeeze(1), y)
        self.log("loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_mse", torch.nn.functional.mse_loss(self.net(x).squeeze(1), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


g = torch.Generator().manual_seed(0)
x = torch.randn(32, 4, generator=g)
ds = torch.utils.data.TensorDataset(x, x.sum(1))
loader = torch.utils.data.DataLoader(ds, batch_size=8)
logger = TuneTermLogger()
# Printed the moment the logger is made, as Lightning prints on a loaded machine before the
# supervisor's file poll comes round: a metric line by any reading, never to be read.
print("step=1 val_acc: 0.5 loss: 9.0", flush=True)
trainer = L.Trainer(
    max_epochs=1,
    logger=logger,
    callbacks=[TuneTermCallback(), TQDMProgressBar()],
    log_every_n_steps=1,
    enable_model_summary=True,
    enable_checkpointing=False,
    accelerator="cpu",
    devices=1,
)
trainer.fit(Tiny(), loader, loader)
print("Trainable params: 97 val_acc: 0.5 done", flush=True)
