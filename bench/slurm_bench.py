"""Runs on a real single-node Slurm (issue 26), with 50 live jobs and 3 readers:

    python bench/slurm_bench.py [--jobs 50] [--readers 3] [--poll 2] [--seconds 30]

Starts a private cluster (tests/helpers/slurmcluster.py: munged, slurmctld, slurmd; as root),
submits `--jobs` held script runs as one job array (`tuneterm sweep --slurm`), then measures:

- squeue calls per minute while `--readers` processes list the runs folder as fast as they
  can for `--seconds` (a logging `squeue` ahead of the real one on PATH), against the bound of
  one call per `--poll` seconds;
- seconds from a job's end (its `scancel`) to the run's final status (`cancelled`), as a
  reader polling every 0.1 s first sees it, for 10 jobs, against `poll_s + 5`;
- the time of `RunStore.list()` (what `tuneterm ls` reads) over the 50 Slurm runs, against
  the same folders with their Slurm record removed (local runs): median of 20, with the queue
  listing fresh (what nearly every `ls` finds), and the one `ls` that lists the queue itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.slurmcluster import start_cluster

from tuneterm.store.runs import RunStore

SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "scripts" / "api_loop.py"
READER = """import sys, time
from tuneterm.store.runs import RunStore
end = time.monotonic() + float(sys.argv[2]); n = 0
while time.monotonic() < end:
    RunStore(sys.argv[1]).list(); n += 1
print(n)
"""


def tuneterm(runs: Path, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = [sys.executable, "-m", "tuneterm", "--runs-dir", str(runs), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return done.stdout


def submit(runs: Path, jobs: int, poll: float) -> list[str]:
    out = tuneterm(runs, "sweep", "--slurm", "--json", "--name", "bench", "--grid",
                   "steps=" + ",".join(str(n) for n in range(1, jobs + 1)),
                   "--set", f"slurm.poll_s={poll}", "--set", 'slurm.extra=["--hold"]',
                   "--", sys.executable, str(SCRIPT), "--steps", "{steps}")  # fmt: skip
    return [r["id"] for r in json.loads(out)["runs"]]


def squeue_rate(runs: Path, tmp: Path, readers: int, seconds: float) -> tuple[int, int, float]:
    log = tmp / "squeue.log"
    wrapper = tmp / "bin" / "squeue"
    wrapper.parent.mkdir()
    real = shutil.which("squeue")
    wrapper.write_text(f'#!/bin/sh\necho "$(date +%s.%N)" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{wrapper.parent}:{os.environ['PATH']}")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(runs), str(seconds)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(readers)
    ]
    listings = sum(int(p.communicate()[0]) for p in procs)
    calls = len(log.read_text().split()) if log.exists() else 0
    return calls, listings, seconds


def end_to_status(runs: Path, poll: float, cluster_env: dict[str, str]) -> list[float]:
    """Submit 10 held runs, each its own job (a cancelled element of a pending array leaves no
    record in Slurm), scancel each from outside (its run never wrote a status) and time until
    a reader sees the run `cancelled`."""
    ids = [
        tuneterm(runs, "run", "--slurm", "--detach", "--set", f"slurm.poll_s={poll}", "--set",
                 'slurm.extra=["--hold"]', "--", sys.executable, str(SCRIPT)).strip()
        for _ in range(10)
    ]  # fmt: skip
    lags = []
    for run_id in ids:
        job = str(RunStore(runs).info(run_id).meta.slurm["job_id"])  # type: ignore[union-attr]
        subprocess.run(["scancel", job], env=cluster_env, check=True)
        ended = time.time()
        while RunStore(runs).info(run_id).status != "cancelled":
            if time.time() - ended > 120:
                raise SystemExit(f"{run_id}: not cancelled after 120 s")
            time.sleep(0.1)
        lags.append(time.time() - ended)
    return lags


def list_times(store_dir: Path, reps: int = 20) -> list[float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        RunStore(store_dir).list()
        times.append(time.perf_counter() - t0)
    return times


def local_copy(runs: Path, dest: Path) -> Path:
    shutil.copytree(runs, dest, ignore=shutil.ignore_patterns(".slurm"))
    for meta_path in dest.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        meta["slurm"] = {}
        meta_path.write_text(json.dumps(meta))
    return dest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--poll", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cluster = start_cluster(tmp / "slurm")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            runs = tmp / "runs"
            t0 = time.perf_counter()
            ids = submit(runs, args.jobs, args.poll)
            print(f"submitted {len(ids)} held runs as one job array in "
                  f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
            calls, listings, seconds = squeue_rate(runs, tmp, args.readers, args.seconds)
            bound = seconds / args.poll + 1
            print(f"squeue: {calls} calls in {seconds:.0f} s ({calls * 60 / seconds:.1f}/min) "
                  f"for {listings} listings by {args.readers} readers; bound {bound:.0f} "
                  f"({60 / args.poll:.0f}/min): calls/bound {calls / bound:.2f}")  # fmt: skip
            lags = end_to_status(runs, args.poll, cluster.env)
            print(f"job end -> final status: median {statistics.median(lags):.2f} s, max "
                  f"{max(lags):.2f} s, against poll_s + 5 = {args.poll + 5:.1f} s: "
                  f"max/limit {max(lags) / (args.poll + 5):.2f}")  # fmt: skip
            RunStore(runs).list()  # a fresh queue listing for the next poll_s
            slurm_times = list_times(runs)
            local = list_times(local_copy(runs, tmp / "local"))
            (runs / ".slurm" / "squeue.json").unlink()
            t0 = time.perf_counter()
            RunStore(runs).list()
            refresh = time.perf_counter() - t0
            s_med, l_med = statistics.median(slurm_times), statistics.median(local)
            print(f"ls ({args.jobs} runs): Slurm {s_med * 1000:.1f} ms, local {l_med * 1000:.1f}"
                  f" ms (median of 20): ratio {s_med / l_med:.2f} (goal <= 1.2); the ls that "
                  f"lists the queue itself: {refresh * 1000:.1f} ms")  # fmt: skip
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
