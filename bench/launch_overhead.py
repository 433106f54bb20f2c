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

(b) `--e2e` (`--e2e-only`: without (a)): the digits fine-tune of engine_overhead.py, each side
in a fresh process timed from process start to exit, the order rotating each round:
- **tuneterm**: `tuneterm run CFG` (launch, engine start, training, validation each epoch,
  checkpoints, test, exit of the follower);
- **tuned**: the bare loop a careful engineer writes (fused AdamW where torch has the kernel,
  the same validation each epoch): the reference every ratio is taken against;
- **bare**: the same loop with PyTorch's default AdamW.
Printed per round: the walls and steady-state img/s (epochs 2.., from tuneterm's own events
and the loops' per-epoch timings), and tuneterm's extra work (test evaluation, checkpoints) on
lines of their own. Then the ratios against the tuned loop (goals: steady-state img/s >= 0.97,
whole-run wall >= 0.85) and where tuneterm's last run went (`show --timing`).

    python bench/launch_overhead.py --e2e-only --epochs 6 --rounds 2    # issue 25's figures
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_overhead import BARE, config, engine_figures, steady

from tuneterm.config import to_toml
from tuneterm.runs import launcher
from tuneterm.runs.timing import lines as timing_lines
from tuneterm.store.events import read_all
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
    cmds = {
        "tuneterm": run,
        "tuned": [sys.executable, "-c", BARE, cfg.model_dump_json(), "tuned"],
        "bare": [sys.executable, "-c", BARE, cfg.model_dump_json(), "default"],
    }
    sides = list(cmds)
    walls: dict[str, list[float]] = {s: [] for s in sides}
    steadies: dict[str, list[float]] = {s: [] for s in sides}
    store = RunStore(runs)
    for r in range(args.rounds):
        order = sides[r % 3 :] + sides[: r % 3]  # alternate who goes first
        for side in order:
            wall, stdout = timed_out(cmds[side], env)
            walls[side].append(wall)
            if side == "tuneterm":
                run_id = store.ids()[-1]
                e = engine_figures(read_all(store.run_dir(run_id) / "events"), cfg)
                steadies[side].append(e["steady"])
                last = (run_id, e)
            else:
                got = json.loads(stdout.strip().splitlines()[-1])
                steadies[side].append(steady(got["train_s"], got["n"]))
        w = {s: walls[s][-1] for s in sides}
        st = {s: steadies[s][-1] for s in sides}
        print(
            f"round {r + 1} ({'/'.join(order)}): wall tuneterm {w['tuneterm']:.2f} s, tuned loop "
            f"{w['tuned']:.2f} s, default loop {w['bare']:.2f} s; steady img/s tuneterm "
            f"{st['tuneterm']:.1f}, tuned {st['tuned']:.1f}, default {st['bare']:.1f}",
            flush=True,
        )
        run_id, e = last
        print(
            f"  tuneterm's extra work: test evaluation {e['test']:.2f} s; checkpoints on the "
            f"wall {e['checkpoints']:.2f} s, in the background {e['background_checkpoints']:.2f}"
            f" s; optimizer step {e['impl']}",
            flush=True,
        )

    def paired(side: str, of: dict[str, list[float]], inverse: bool = False) -> float:
        # Each round's sides ran back to back under the same load: the ratio per round.
        pairs = zip(of[side], of["tuned"], strict=True)
        return statistics.median((b / a) if inverse else (a / b) for a, b in pairs)

    print(
        f"tuneterm/tuned loop: steady-state img/s {paired('tuneterm', steadies):.3f} "
        f"(goal >= 0.97); whole-run wall tuned/tuneterm {paired('tuneterm', walls, True):.3f} "
        "(goal >= 0.85)"
    )
    print(
        f"default-AdamW loop/tuned loop: steady-state img/s {paired('bare', steadies):.3f}; "
        f"whole-run wall tuned/default {paired('bare', walls, True):.3f}"
    )
    print(f"where tuneterm's last run went (`tuneterm show {run_id} --timing`):")
    print("\n".join("  " + line for line in timing_lines(last[1]["timing"])))


def timed_out(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds from process start to exit, and what it printed."""
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--e2e", action="store_true", help="also the end-to-end fine-tune")
    ap.add_argument("--e2e-only", action="store_true", help="the end-to-end fine-tune alone")
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
        if not args.e2e_only:
            launch(args, tmp, env)
        if args.e2e or args.e2e_only:
            e2e(args, tmp, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
