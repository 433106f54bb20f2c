"""Peak RSS of the engine process's event machinery over a 1,000,000-step run (issue 6, part 5).

    python bench/engine_rss.py                 # 1,000,000 steps, one train event per step
    python bench/engine_rss.py --steps 200000  # shorter
    python bench/engine_rss.py --log-every 10  # the default logging interval: 100k events

A child process owns a real run folder through the real `EngineProcess` (meta.json owner,
EventWriter with its background flusher and sealed TinyDB segments, the system sampler
thread) and does what the training loop does per step, minus the model and the data: one
`emit("train", ...)` per logged step and a `progress(...)` call (meta.json at most once a
second), plus a val + checkpoint event every 10,000 steps. It prints its RSS (VmRSS) and
peak RSS (VmHWM) every 10% of the run.

The figure is the growth of peak RSS from the first 10% of the run to the end, as a ratio
(1.00 = flat) and in MiB: the event stream must not make the engine grow with the run.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime

CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from tuneterm.config import RunConfig
from tuneterm.engine.process import EngineProcess
from tuneterm.store.runs import RunStore
from tuneterm.runs.lifecycle import new_run

def mem():
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out

root, steps, log_every = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
store = RunStore(root)
info = store.create(new_run(RunConfig(), "rss"))
engine = EngineProcess(store, info.id)
threading.Thread(target=engine._sampler, daemon=True).start()
engine.set_status("running")
t0 = time.perf_counter()
for step in range(1, steps + 1):
    if step % log_every == 0:
        engine.emit("train", step=step, epoch=step // 10_000 + 1, loss=1.0 / step, lr=1e-3,
                    examples_s=1234.5, data_wait=0.01)
        engine.progress(step=step, last_loss=1.0 / step, throughput=1234.5)
    if step % 10_000 == 0:
        engine.emit("val", epoch=step // 10_000, step=step, val_loss=0.5, val_acc=0.9)
        engine.emit("checkpoint", which="epoch", step=step, epoch=step // 10_000, best=False)
    if step % (steps // 10) == 0:
        print(json.dumps({"step": step, "s": round(time.perf_counter() - t0, 2), **mem()}),
              flush=True)
engine.set_status("completed")
engine.writer.close()
print(json.dumps({"events": engine.writer.seq, **mem()}), flush=True)
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--log-every", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, tmp, str(args.steps), str(args.log_every)],
            capture_output=True,
            text=True,
            check=True,
        )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    marks, last = rows[:-1], rows[-1]
    print(f"{'step':>10} {'seconds':>8} {'RSS MiB':>8} {'peak MiB':>9}")
    for r in marks:
        print(f"{r['step']:>10,} {r['s']:>8.1f} {r['VmRSS']:>8.1f} {r['VmHWM']:>9.1f}")
    base, end = marks[0]["VmHWM"], last["VmHWM"]
    print(
        f"\n{last['events']:,} events; peak RSS {base:.1f} MiB at 10% of the run -> "
        f"{end:.1f} MiB at the end: ratio {end / base:.3f}, growth {end - base:+.1f} MiB "
        f"({datetime.now(UTC):%Y-%m-%d}, {platform.node()}, python {platform.python_version()})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
