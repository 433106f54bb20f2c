"""A loop that reports through the tuneterm API: log, define_metric, should_stop, resume.
With --die-at N it kills itself with SIGKILL right after log() returns at step N."""

import argparse
import json
import os
import signal
import time

import tuneterm

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--die-at", type=int, default=-1)
ap.add_argument("--sleep", type=float, default=0.02)
args = ap.parse_args()

tuneterm.define_metric("val_err", higher=False, best=True)
ckpt = tuneterm.checkpoint_dir()
state = ckpt / "state.json" if ckpt else None
start = 0
if tuneterm.resuming() and state is not None and state.exists():
    start = json.loads(state.read_text())["step"] + 1
for step in range(start, args.steps):
    if state is not None:  # the step's "checkpoint" first, then its metrics
        state.write_text(json.dumps({"step": step}))
    tuneterm.log({"loss": 1.0 / (step + 1), "val_err": 0.5 / (step + 1)}, step=step)
    if step == args.die_at and not tuneterm.resuming():
        os.kill(os.getpid(), signal.SIGKILL)
    if tuneterm.should_stop():
        print(f"stopping at step {step}", flush=True)
        break
    time.sleep(args.sleep)
