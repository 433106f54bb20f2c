"""A plain PyTorch loop that never imports tuneterm: it prints `step: N loss: X` lines, saves a
checkpoint each step (--ckpt, default RUN/checkpoints/last.pt), and goes on from --resume PATH."""

import argparse
import os
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=30)
ap.add_argument("--lr", type=float, default=0.1)
ap.add_argument("--ckpt", default="")
ap.add_argument("--resume", default="")
ap.add_argument("--sleep", type=float, default=0.05)
args = ap.parse_args()
if not args.ckpt and os.environ.get("TUNETERM_RUN_DIR"):  # where `tuneterm resume` looks
    args.ckpt = os.path.join(os.environ["TUNETERM_RUN_DIR"], "checkpoints", "last.pt")

torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(64, 4)
y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=args.lr)
start = 0
if args.resume and os.path.exists(args.resume):
    ck = torch.load(args.resume, weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    start = ck["step"] + 1
    print(f"resumed from step {start}", flush=True)
for step in range(start, args.steps):
    loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if args.ckpt:
        tmp = args.ckpt + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
        os.replace(tmp, args.ckpt)
    print(f"step: {step} loss: {loss.item():.5f}", flush=True)
    time.sleep(args.sleep)
print("done", flush=True)
