"""Runs of other tools at scale: a folder of TensorBoard runs (written by SummaryWriter), read
by tuneterm.sources, against TensorBoard's own load of the same folder (EventMultiplexer).

    python bench/sources_bench.py                        # 200 runs x 100,000 scalars
    python bench/sources_bench.py --runs 20 --scalars 10000 --baseline-runs 5

One run is written by `torch.utils.tensorboard.SummaryWriter`; the others are byte copies of
its event file (writing 20 M scalars through SummaryWriter takes over an hour on 2 cores), each
in its own folder, dated in the past so they list as `ended`. Measured, each in this process
with a cache of its own:

- first list: `SourcedStore.list()` with an empty cache;
- cached list: a new store (a second start) listing again;
- one run's curves: every event of one run, as the TUI's poller reads them;
- a poll after 1,000 new scalars: a live SummaryWriter appends 1,000 scalars to a run already
  read; the poll's cost against the whole read's, beside 1,000 / scalars;
- TensorBoard's own load: `EventMultiplexer.AddRunsFromDirectory` + `Reload()` over
  `--baseline-runs` of the runs (all by default), scaled to all of them when fewer.

Prints a markdown table; `--append` adds it to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"first list": 3.0, "cached list": 0.5, "one run's curves": 1.0}
OLD = time.time() - 30 * 86400


def write_run(folder: Path, scalars: int) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as w:
        for s in range(scalars):
            if s % 100 == 99:
                w.add_scalar("eval/accuracy", s / scalars, s)
            else:
                w.add_scalar("train/loss", 1.0 / (s + 1), s)
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def make_folder(top: Path, runs: int, scalars: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    first = write_run(top / "run000", scalars)
    wrote = time.perf_counter() - t0
    for i in range(1, runs):
        dest = top / f"run{i:03d}"
        dest.mkdir()
        shutil.copyfile(first, dest / first.name)
    for p in top.rglob("events.out.tfevents.*"):
        os.utime(p, (OLD, OLD))
    return wrote, first.stat().st_size


CPU: dict[str, float] = {}  # CPU seconds of each measure (the machine is shared: wall varies)


def timed(fn, key: str = ""):  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    if key:
        CPU[key] = time.process_time() - c0
    return time.perf_counter() - t0, value


def measure(top: Path, runs_dir: Path) -> dict[str, float]:
    from tuneterm.sources import SourcedStore

    first = SourcedStore(runs_dir, [top])
    t_first, listed = timed(first.list, "first list")
    second = SourcedStore(runs_dir, [top])
    t_cached, again = timed(second.list, "cached list")
    assert len(listed) == len(again)
    rid = listed[0].id
    third = SourcedStore(runs_dir, [top])
    t_curves, n = timed(
        lambda: len(list(third.events(rid))), "one run's curves"
    )  # what the TUI's poller reads
    return {"first list": t_first, "cached list": t_cached, "one run's curves": t_curves,
            "runs": len(listed), "events": n}  # fmt: skip


def measure_poll(top: Path, scalars: int) -> tuple[float, float]:
    """A live run: read whole, then 1,000 scalars appended and polled."""
    from torch.utils.tensorboard import SummaryWriter

    from tuneterm.sources.readers import reader_for

    folder = top / "live"
    w = SummaryWriter(str(folder))
    for s in range(scalars):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
    w.flush()
    reader = reader_for("tb", folder)
    t_whole, batch = timed(reader.poll)
    assert len(batch.points) == scalars, len(batch.points)
    for s in range(scalars, scalars + 1000):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
    w.flush()
    t_poll, batch = timed(reader.poll)
    w.close()
    assert len(batch.points) == 1000, len(batch.points)
    return t_whole, t_poll


def tensorboard_load(top: Path, runs: int, use: int) -> float:
    from tensorboard.backend.event_processing import event_multiplexer

    sub = top.parent / "baseline"
    sub.mkdir(exist_ok=True)
    for i in range(use):
        (sub / f"run{i:03d}").symlink_to(top / f"run{i:03d}")
    mux = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0})
    t0, c0 = time.perf_counter(), time.process_time()
    mux.AddRunsFromDirectory(str(sub))
    mux.Reload()
    CPU["tensorboard"] = (time.process_time() - c0) * runs / use
    return (time.perf_counter() - t0) * runs / use


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--scalars", type=int, default=100_000)
    ap.add_argument("--baseline-runs", type=int, default=0, help="TensorBoard's load over this "
                    "many runs, scaled to all (default: all)")  # fmt: skip
    ap.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args(argv)
    use = min(args.baseline_runs or args.runs, args.runs)
    with tempfile.TemporaryDirectory(prefix="sources-bench-") as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        top = Path(tmp) / "logs"
        top.mkdir()
        wrote, size = make_folder(top, args.runs, args.scalars)
        m = measure(top, Path(tmp) / "runs")
        t_whole, t_poll = measure_poll(Path(tmp) / "live", args.scalars)
        t_tb = tensorboard_load(top, args.runs, use)
    lines = [
        "",
        "## Runs of other tools (bench/sources_bench.py)",
        "",
        f"- date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())}",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        f"- command: `python bench/sources_bench.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- folder: {args.runs} TensorBoard runs x {args.scalars:,} scalars ({size / 1e6:.1f} MB "
        f"each, {args.runs * size / 1e9:.2f} GB); one written by SummaryWriter in {wrote:.1f} s, "
        "the rest byte copies of it",
        "",
        "| metric | measured | goal | ratio | note |",
        "|---|---|---|---|---|",
    ]
    for key, goal in GOALS.items():
        note = f"CPU {CPU[key]:.3f} s" + (f"; {m['events']:,} events" if "curves" in key else "")
        lines.append(
            f"| {key} | {m[key]:.3f} s | <= {goal:g} s | {m[key] / goal:.2f} of max | {note} |"
        )
    lines.append(
        f"| poll after 1,000 new scalars | {t_poll * 1000:.1f} ms |  | "
        f"{t_poll / t_whole:.4f} of a whole read ({t_whole:.2f} s) | "
        f"appended share {1000 / (args.scalars + 1000):.4f} |"
    )
    scaled = "" if use == args.runs else f" (measured over {use} runs, scaled to {args.runs})"
    lines.append(
        f"| TensorBoard's own load (EventMultiplexer) | {t_tb:.1f} s |  | first list is "
        f"{m['first list'] / t_tb:.4f} of it; cached {m['cached list'] / t_tb:.5f} | "
        f"baseline{scaled}; CPU {CPU['tensorboard']:.1f} s |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
