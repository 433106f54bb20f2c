"""A loop that reports through tuneterm.log: a train loss every step, val_loss and val_acc
every --eval steps (--vals picks them). It saves its state every --every steps and goes on
from there when resumed, so a resume replays the steps since the last save.
--die-at N: SIGKILL at step N on the first run.
--busy-child: a child process spins the CPU while the loop runs (the process tree's CPU)."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import tuneterm

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--eval", type=int, default=5)
ap.add_argument("--every", type=int, default=5)
ap.add_argument("--die-at", type=int, default=-1)
ap.add_argument("--sleep", type=float, default=0.05)
ap.add_argument("--busy-child", action="store_true")
ap.add_argument("--vals", default="val_loss,val_acc", help="the val metrics it reports")
args = ap.parse_args()

child = None
if args.busy_child:
    # it spins until its parent is gone, so a kill -9 of the loop leaves nothing behind
    spin = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    child = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.DEVNULL)
ckpt = tuneterm.checkpoint_dir()
state = ckpt / "state.json" if ckpt else None
start = 0
if tuneterm.resuming() and state is not None and state.exists():
    start = json.loads(state.read_text())["step"]
    print(f"resumed from step {start}", flush=True)
try:
    for step in range(start, args.steps):
        if state is not None and step % args.every == 0:
            state.write_text(json.dumps({"step": step}))
        metrics = {"loss": 1.0 / (step + 1)}
        if step % args.eval == 0:
            every = {"val_loss": 2.0 / (step + 1), "val_acc": step / args.steps}
            metrics.update({k: every[k] for k in args.vals.split(",") if k})
        tuneterm.log(metrics, step=step)
        if step == args.die_at and not tuneterm.resuming():
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(args.sleep)
finally:
    if child is not None:
        child.kill()
        child.wait()
