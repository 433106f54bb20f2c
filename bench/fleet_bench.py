"""The fleet view over N local sshd hosts, each figure beside the same work without ssh.

    python bench/fleet_bench.py [--hosts 8] [--runs 25] [--live 4]

Starts N real sshd daemons on 127.0.0.1 (tests/helpers/sshd.py), fills each host's runs
folder with RUNS runs (LIVE of them live script runs, the rest finished copies), then
measures, over ssh and over the same N folders read as local hosts (no ssh), as a ratio:

* first paint: the fleet view opened headless until every host's list is on screen;
* a refresh pass: every host's `ls --json` at once (Fleet.runs), median of 5;
* redraw: the run list drawn from every host's rows, median of 5;
* emit -> on screen: a live run logs `emit_t = time.time()`; the selected run's events
  reach the screen (median of the events seen in 8 s); the far side polls every 0.25 s;
* ssh master connections per host (must be exactly 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers.cli import kill_engines_under  # noqa: E402
from helpers.sshd import SshFleet  # noqa: E402

from tuneterm.hosts import Fleet, HostSpec, load_hosts  # noqa: E402
from tuneterm.tui.screens.fleet import FleetApp, FleetScreen, RunEvent  # noqa: E402

EMITTER = """
import time, tuneterm
for step in range(100000):
    tuneterm.log({"emit_t": time.time()}, step=step)
    if tuneterm.should_stop():
        break
    time.sleep(0.5)
"""


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def tuneterm_cli(runs: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "tuneterm", "--runs-dir", str(runs), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout


def fill(runs: Path, finished: int, live: int, emitter: Path, seed: Path) -> list[str]:
    """`finished` copies of the seed run (each its own id) and `live` emitter runs."""
    meta = json.loads((seed / "meta.json").read_text())
    for i in range(finished):
        run_id = f"{meta['id'][:-4]}{i:04x}"
        shutil.copytree(seed, runs / run_id)
        (runs / run_id / "meta.json").write_text(json.dumps({**meta, "id": run_id}))
    ids = []
    for _ in range(live):
        out = tuneterm_cli(runs, "run", "--detach", "--", sys.executable, str(emitter))
        ids.append(out.strip().splitlines()[-1])
    return ids


class TimedScreen(FleetScreen):
    """Records when each followed event reaches the screen, against its `emit_t`."""

    latencies: list[float]
    since = float("inf")  # events emitted before the follow began are a backlog, not timed

    def on_run_event(self, message: RunEvent) -> None:  # beside FleetScreen's own handler
        emitted = message.event.get("emit_t")
        if isinstance(emitted, float) and emitted > self.since:
            self.latencies.append(time.time() - emitted)


async def view_figures(
    specs: list[HostSpec], live_key: str, got: dict[str, float], count: Any = None
) -> None:
    """Fills `got` as figures come, so a view that is slow to close loses none."""
    TimedScreen.latencies = []
    app = FleetApp(specs, screen=TimedScreen)
    t0 = time.monotonic()
    async with app.run_test(size=(160, 60)) as pilot:
        say(f"view over {len(specs)} hosts opened")
        while not isinstance(app.screen, TimedScreen) or not app.screen.first_paint:
            await pilot.pause(0.01)
        screen = app.screen
        got["first_paint_s"] = screen.first_paint - t0
        say(f"first paint {got['first_paint_s']:.2f} s")
        draws = []
        for _ in range(5):
            t = time.perf_counter()
            screen.draw_runs()
            draws.append(time.perf_counter() - t)
        got["redraw_s"] = statistics.median(draws)
        got["rows"] = float(sum(len(r) for r in screen.rows.values()))
        from textual.widgets import DataTable

        table = screen.query_one(DataTable)
        while live_key not in {str(k.value) for k in table.rows}:
            await pilot.pause(0.05)
        table.move_cursor(row=table.get_row_index(live_key))
        screen.draw_detail()
        screen.since = time.time()
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
        lat = screen.latencies
        got["emit_to_screen_s"] = statistics.median(lat) if lat else float("nan")
        say(f"emit to screen {got['emit_to_screen_s']:.3f} s ({len(lat)} events)")
        if count is not None:  # while the view is open: its connections
            got["masters"] = count()
        await pilot.press("q")


def view(specs: list[HostSpec], live_key: str, count: Any = None) -> dict[str, Any]:
    got: dict[str, Any] = dict.fromkeys(
        ("first_paint_s", "redraw_s", "emit_to_screen_s", "rows"), float("nan")
    )

    async def bounded() -> None:
        await asyncio.wait_for(view_figures(specs, live_key, got, count), timeout=240)

    try:
        asyncio.run(bounded())
    except TimeoutError:
        say(f"the view did not finish within 240 s; figures so far: {got}")
    return got


def refresh_pass(specs: list[HostSpec]) -> float:
    """Median of 5 passes; a pass in which a host did not answer is said, not timed."""
    fleet = Fleet(specs)
    fleet.runs()  # connections up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        _, errors = fleet.runs()
        if errors:
            say(f"refresh pass: {len(errors)} host(s) did not answer: {list(errors)}")
        else:
            times.append(time.perf_counter() - t)
    return statistics.median(times) if times else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--live", type=int, default=4)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    fleet = SshFleet(base)
    emitter = base / "emitter.py"
    emitter.write_text(EMITTER)
    seed_runs = base / "seed"
    seed_runs.mkdir()
    tuneterm_cli(seed_runs, "run", "--", sys.executable, str(ROOT / "tests/scripts/api_loop.py"),
                 "--steps", "20", "--sleep", "0")  # fmt: skip
    (seed,) = seed_runs.iterdir()
    names = [f"h{i}" for i in range(args.hosts)]
    live: dict[str, list[str]] = {}
    try:
        say("seed run made")
        for name in names:
            say(f"host {name}")
            host = fleet.start(name)
            live[name] = fill(host.runs, args.runs - args.live, args.live, emitter, seed)
        # a generous timeout: on a loaded machine a host is slow, not gone
        config = fleet.config_dir(base / "config", names, timeout_s=30)
        os.environ.update(fleet.env(config, base / "local"))
        ssh_specs = load_hosts().pick(names)
        local_specs = [HostSpec(f"l{i}", runs=str(fleet.hosts[n].runs), timeout_s=30)
                       for i, n in enumerate(names)]  # fmt: skip
        key = f"{names[0]}:{live[names[0]][0]}" if args.live else ""

        def per_host() -> list[int]:
            masters = [" ".join(p.cmdline()) for p in fleet.masters()]
            return [sum(f"-p {h.port} " in m for m in masters) for h in fleet.hosts.values()]

        figures = {
            "ssh": view(ssh_specs, key, per_host),
            "local": view(local_specs, "l0" + key[len(names[0]) :]),
        }
        figures["ssh"]["refresh_pass_s"] = refresh_pass(ssh_specs)
        figures["local"]["refresh_pass_s"] = refresh_pass(local_specs)
        report(args, figures, figures["ssh"].get("masters"))
    finally:
        for host in fleet.hosts.values():
            kill_engines_under(host.runs)
        fleet.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


def report(args: Any, figures: dict[str, dict[str, Any]], per_host: Any) -> None:
    load = os.getloadavg()[0]
    print(f"fleet_bench: {args.hosts} hosts x {args.runs} runs ({args.live} live), "
          f"load {load:.2f}")  # fmt: skip
    goals = {"first_paint_s": "<= 2 s", "refresh_pass_s": "<= 1 s", "redraw_s": "",
             "emit_to_screen_s": "<= 1 s + 0.25 s poll"}  # fmt: skip
    print("| figure | over ssh | local stores | ssh/local | goal |")
    print("|---|---|---|---|---|")
    for key, goal in goals.items():
        s, loc = figures["ssh"][key], figures["local"][key]
        print(f"| {key} | {s:.3f} | {loc:.3f} | {s / loc:.2f} | {goal} |")
    rows = figures["ssh"]["rows"]
    print(f"rows on screen: {rows:.0f}; ssh master connections per host: {per_host}")


if __name__ == "__main__":
    sys.exit(main())
