"""The fixed cost of a run: `tuneterm run --detach` against bare Python, and a whole fine-tune
through `tuneterm run` against a bare loop, each as ratios measured in the same run.

    python bench/launch_overhead.py                       # launch only, 5 rounds
    python bench/launch_overhead.py --e2e --epochs 3      # + the end-to-end fine-tune
    python bench/launch_overhead.py --e2e --size 48 --epochs 6 --rounds 2

(a) launch, each in a fresh process, timed from process start to exit, the order rotating:
- **pass**: `python -c pass` (the interpreter's own start);
- **torch**: `python -c "import torch, torchvision"` (what checking a model name used to cost);
- **detach**: `tuneterm run CFG --detach` on the default classify config with random weights
  (returns once the engine has taken the run: handshake included); the engine is killed at
  once, so it does not slow the next measurement.
Printed: seconds (median) and detach/pass, detach/torch. Goal: detach <= 1.5 s. One more
launch with an empty catalog cache (the first launch after an install) is printed apart.

(b) `--e2e`: the digits fine-tune of engine_overhead.py, from process start to process end:
`tuneterm run CFG` (launch, engine start, training, test, exit of the follower) against the
bare loop in a fresh `python -c` process (import, data, train, validate). Printed: bare/tuneterm
(goal >= 0.95 for a fine-tune of about 70 s; pick --epochs/--size to get there).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_overhead import BARE, config

from tuneterm.config import to_toml
from tuneterm.runs import launcher
from tuneterm.store.runs import RunStore

TUNETERM = [sys.executable, "-m", "tuneterm"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def kill_all(root: Path) -> None:
    store = RunStore(root)
    for run_id in store.ids():
        if store.info(run_id).alive:
            with contextlib.suppress(launcher.RunStateError):  # it may have ended meanwhile
                launcher.kill(store, run_id)


def launch(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> None:
    cfg_path = tmp / "default.toml"
    cfg_path.write_text('[model]\nweights = "none"\n')  # the default config, no download
    runs = tmp / "runs"
    detach = [*TUNETERM, "--runs-dir", str(runs), "run", str(cfg_path), "--detach"]
    sides = {
        "pass": [sys.executable, "-c", "pass"],
        "torch": [sys.executable, "-c", "import torch, torchvision"],
        "detach": detach,
    }
    timed(detach, env)  # warm the catalog cache and the page cache
    kill_all(runs)
    got: dict[str, list[float]] = {s: [] for s in sides}
    names = list(sides)
    for r in range(args.rounds):
        for side in names[r % 3 :] + names[: r % 3]:
            got[side].append(timed(sides[side], env))
            kill_all(runs)
    med = {s: statistics.median(v) for s, v in got.items()}
    for s in names:
        print(f"{s:>8}: median {med[s]:.3f} s  (all: {', '.join(f'{v:.2f}' for v in got[s])})")
    print(
        f"detach/pass {med['detach'] / med['pass']:.2f}, detach/torch "
        f"{med['detach'] / med['torch']:.2f}; goal: detach <= 1.5 s "
        f"({'met' if med['detach'] <= 1.5 else 'not met'})"
    )
    cold = {**env, "XDG_CACHE_HOME": str(tmp / "cold-cache")}
    first = timed(detach, cold)
    kill_all(runs)
    print(f"first launch with an empty catalog cache: {first:.3f} s (builds the catalog once)")


def e2e(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> None:
    cfg = config(args)
    cfg_path = tmp / "e2e.toml"
    cfg_path.write_text(to_toml(cfg))
    runs = tmp / "e2e-runs"
    run = [*TUNETERM, "--runs-dir", str(runs), "run", str(cfg_path)]
    bare = [sys.executable, "-c", BARE, cfg.model_dump_json()]
    got: dict[str, list[float]] = {"tuneterm": [], "bare": []}
    for r in range(args.rounds):
        order = ["tuneterm", "bare"] if r % 2 == 0 else ["bare", "tuneterm"]
        for side in order:
            got[side].append(timed(run if side == "tuneterm" else bare, env))
        t, b = got["tuneterm"][-1], got["bare"][-1]
        print(
            f"round {r + 1}: tuneterm run {t:.2f} s, bare loop {b:.2f} s, bare/tuneterm {b / t:.3f}"
        )
    t, b = statistics.median(got["tuneterm"]), statistics.median(got["bare"])
    # Each round's two sides ran back to back under the same load: the ratio per round.
    paired = statistics.median(x / y for x, y in zip(got["bare"], got["tuneterm"], strict=True))
    best = min(got["bare"]) / min(got["tuneterm"])
    print(
        f"median of the rounds' bare/tuneterm {paired:.3f}; ratio of the medians {b / t:.3f} "
        f"(tuneterm {t:.2f} s, bare {b:.2f} s); best-of-{args.rounds} {best:.3f}; goal >= 0.95"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--e2e", action="store_true", help="also the end-to-end fine-tune")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    env = {**os.environ, "TUNETERM_OFFLINE": "1"}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        launch(args, tmp, env)
        if args.e2e:
            e2e(args, tmp, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
