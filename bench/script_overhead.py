"""Your own script under tuneterm against the same script bare (issue 14).

    python bench/script_overhead.py                  # 3 rounds, 3,000 steps each
    python bench/script_overhead.py --rounds 5 --steps 10000
    python bench/script_overhead.py --steps 300 --width 8192   # ~10x longer steps

The script (written below) trains a small MLP on the CPU and calls `tuneterm.log(...)` at
every step, plus prints one line per 100 steps. Each round runs it twice, the order rotating:

- **bare**: `python train.py`, no TUNETERM_RUN_DIR: every API call returns at once;
- **api only**: the same with TUNETERM_RUN_DIR set and no supervisor: what `log()` itself
  costs the script (a JSON line and one `write` per step);
- **tuneterm**: `tuneterm run -- python train.py` through the launcher: the detached
  supervisor, the metrics file tailed into the event queue, output to `output.log` and `log`
  events, system samples, meta.json updates.

Each side reports its own loop time (first step to last, in the script), so process start-up
is left out on both sides. Printed: per round both times and the ratio bare / tuneterm (goal:
>= 0.99: tuneterm costs at most 1% of the wall time), then the median ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tuneterm.config import from_dict
from tuneterm.runs import launcher
from tuneterm.store.runs import RunStore

SCRIPT = """\
import sys, time
import torch
import tuneterm

steps, width = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(1)
net = torch.nn.Sequential(
    torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10)
)
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x, y = torch.randn(128, 64), torch.randint(0, 10, (128,))
start = time.perf_counter()
for step in range(steps):
    loss = torch.nn.functional.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    value = loss.item()
    tuneterm.log({"loss": value, "val_acc": 1.0 / (1.0 + value)}, step=step)
    if step % 100 == 0:
        print(f"step: {step} loss: {value:.4f}", flush=True)
print(f"LOOP_SECONDS {time.perf_counter() - start:.6f}", flush=True)
"""


def loop_seconds(text: str) -> float:
    for line in reversed(text.splitlines()):
        if line.startswith("LOOP_SECONDS"):
            return float(line.split()[1])
    raise RuntimeError("the script printed no LOOP_SECONDS:\n" + text[-2000:])


def bare(script: Path, steps: int, width: int, api_dir: Path | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETERM_RUN")}
    if api_dir is not None:  # the API writes its metrics file; no supervisor reads it
        api_dir.mkdir(parents=True, exist_ok=True)
        env["TUNETERM_RUN_DIR"] = str(api_dir)
    done = subprocess.run(
        [sys.executable, str(script), str(steps), str(width)],
        capture_output=True,
        text=True,
        env=env,
    )
    return loop_seconds(done.stdout)


def under_tuneterm(store: RunStore, script: Path, steps: int, width: int) -> float:
    argv = [sys.executable, str(script), str(steps), str(width)]
    cfg = from_dict({"script": {"command": argv}})
    info = launcher.start(store, cfg)
    while store.info(info.id).alive:
        time.sleep(0.2)
    status = store.info(info.id).status
    if status != "completed":
        raise RuntimeError(f"run {info.id} is {status}")
    return loop_seconds((info.path / "output.log").read_text())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument(
        "--width", type=int, default=256, help="hidden units: the step's cost (256: ~1 ms)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train.py"
        script.write_text(SCRIPT)
        store = RunStore(Path(tmp) / "runs")
        ratios: list[float] = []
        api_ratios: list[float] = []
        for r in range(args.rounds):
            sides = ["bare", "api", "tuneterm"]
            order = sides[r % 3 :] + sides[: r % 3]
            t: dict[str, float] = {}
            for side in order:
                if side == "bare":
                    t[side] = bare(script, args.steps, args.width)
                elif side == "api":
                    t[side] = bare(script, args.steps, args.width, Path(tmp) / f"api{r}")
                else:
                    t[side] = under_tuneterm(store, script, args.steps, args.width)
            ratio = t["bare"] / t["tuneterm"]
            ratios.append(ratio)
            api_ratios.append(t["bare"] / t["api"])
            step_ms = 1000 * t["bare"] / args.steps
            print(
                f"round {r + 1}: bare {t['bare']:.3f} s  api only {t['api']:.3f} s  "
                f"tuneterm {t['tuneterm']:.3f} s  "
                f"({args.steps} steps of {step_ms:.1f} ms, log() every step)  "
                f"ratio bare/tuneterm {ratio:.3f}",
                flush=True,
            )
    print(f"median ratio bare/api-only over {args.rounds} rounds: "
          f"{statistics.median(api_ratios):.3f} (the script's own cost of log())")  # fmt: skip
    print(f"median ratio bare/tuneterm over {args.rounds} rounds: {statistics.median(ratios):.3f}"
          " (goal >= 0.99)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
