"""Soak: kill -9 engines at random moments, hundreds of times; print what survived.

    python bench/soak_kill.py                  # 200 stand-in kills + 10 real-engine kills
    python bench/soak_kill.py --kills 500 --real 0 --seed 3

Each kill is checked as in tests/test_faults_process.py (`kill_chain` in
tests/helpers/fault_engine.py): the first look after the kill reads `crashed`, every segment
parses, seq runs 0..n-1 with no event lost that a reader saw before the kill, `resume` starts
from the checkpoint on disk, and the last resume completes with the event count its engine
reports. The stand-in engine is the real EngineProcess/event writer/launcher with a torch-free
loop; `--real` kills the real engine on a tiny real run (about 8 s per kill on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers.configs import tiny_toml  # noqa: E402
from helpers.fault_engine import CMD, KillLog, kill_chain, standin_step  # noqa: E402

from tuneterm.config import loads  # noqa: E402
from tuneterm.runs import launcher  # noqa: E402
from tuneterm.store.runs import RunStore  # noqa: E402

STANDIN = '[model]\nweights = "none"\n[train]\nepochs = 6\nlog_every = 2\n'
REAL = tiny_toml(name=None, epochs=3, lr=None)


def _real_step(run_dir: Path) -> int:
    from tuneterm.engine import checkpoint

    last = run_dir / "checkpoints" / "last.pt"
    return int(checkpoint.load(last)["step"]) if last.is_file() else 0


def soak(kills: int, per_run: int, real: bool, seed: int) -> tuple[KillLog, int, float]:
    import os

    os.environ.setdefault("STANDIN_STEPS", "6")
    os.environ.setdefault("STANDIN_STEP_S", "0.03")
    os.environ["TUNETERM_OFFLINE"] = "1"
    launcher.ENGINE_CMD = [sys.executable, "-m", "tuneterm.engine"] if real else CMD
    total = KillLog()
    failures: list[str] = []
    runs = 0
    t0 = time.perf_counter()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs")
        while total.kills < kills:
            n = min(per_run, kills - total.kills)
            info = launcher.start(store, loads(REAL if real else STANDIN), checked=True)
            try:
                log = kill_chain(
                    store,
                    info.id,
                    rng,
                    kills=n,
                    checkpoint_step=_real_step if real else standin_step,
                    expected_events=50 if real else 36,
                    max_delay=1.0 if real else 0.1,
                    timeout=300,
                )
            except AssertionError as exc:  # a finding: report it and go on soaking
                failures.append(f"{info.id}: {exc}")
                print(f"  FAILED {info.id}: {exc}", flush=True)
                total.kills += n
                continue
            runs += 1
            for key in ("kills", "missed", "resumes", "first_look_crashed"):
                setattr(total, key, getattr(total, key) + getattr(log, key))
            print(f"  {log.details[-1]}", flush=True)
    total.details = failures
    return total, runs, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200, help="stand-in engine kills")
    ap.add_argument("--real", type=int, default=10, help="real engine kills")
    ap.add_argument("--per-run", type=int, default=4, help="kills chained on one run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for name, kills, real in (("stand-in", args.kills, False), ("real", args.real, True)):
        if not kills:
            continue
        print(f"{name} engine: {kills} kills, {args.per_run} per run, seed {args.seed}")
        log, runs, secs = soak(kills, args.per_run, real, args.seed)
        print(
            f"{name}: {log.kills} kills over {runs} runs in {secs:.0f} s; "
            f"first look read crashed {log.first_look_crashed}/{log.kills}; "
            f"resumes {log.resumes}, all {runs} runs completed; "
            f"missed moments {log.missed}; chains failing a check: {len(log.details)}"
        )
        for line in log.details:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
