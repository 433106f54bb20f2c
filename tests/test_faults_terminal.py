"""Terminal faults and concurrency, with the TUI as a real process in a real terminal (tmux).

* SIGHUP: `tmux kill-session` hangs the terminal up, as a dropped SSH session does. The TUI,
  which launched the runs itself, dies; the runs go on and complete; a reopened TUI shows
  their full history.
* 8 runs write at once while the TUI and 2 `tuneterm events RUN --follow --json` followers read
  (plus this test's own cursor readers): 0 read errors, and every run holds exactly the number
  of events its engine reports in its final status.
The engines are the stand-in engine (tests/helpers/fault_engine.py): the real EngineProcess,
writer and launcher with a torch-free loop, so 8 of them fit on 2 cores next to the TUI and
followers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import cli_popen
from helpers.fake_store import new_app, pilot, until
from helpers.fault_engine import CMD
from helpers.waiting import PATIENCE

from tuneterm.store.runs import RunStore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

LAUNCH_AND_OPEN = """
import sys
from tuneterm.runs import launcher
from tuneterm.config import loads
from tuneterm.store.runs import RunStore
from tuneterm.tui.app import run_app
launcher.ENGINE_CMD = {cmd!r}
store = RunStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    launcher.start(store, loads('[run]\\nname = "r%d"\\n[train]\\nepochs = 3\\nlog_every = 2' % i),
                   checked=True)
run_app(sys.argv[1])
"""


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, timeout=30
        )
        return out.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        shell = f"env {exports} " + " ".join(f"'{c}'" for c in command)
        self("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", shell)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "t")

    def pid(self) -> int:
        return int(self("list-panes", "-t", "t", "-F", "#{pane_pid}").split()[0])

    def kill(self) -> None:
        self("kill-server")


def _env(tmp_path: Path, steps: int, step_s: float) -> dict[str, str]:
    return {
        "STANDIN_GATE": str(tmp_path / "runs-may-end"),
        "STANDIN_STEPS": str(steps),
        "STANDIN_STEP_S": str(step_s),
        "TUNETERM_CONFIG_DIR": str(tmp_path / "settings"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "TERM": "xterm-256color",
    }


def _wait(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


def _open_tui(tmux: Tmux, runs: Path, tmp_path: Path, n: int, steps: int) -> None:
    script = tmp_path / "launch_and_open.py"
    script.write_text(LAUNCH_AND_OPEN.format(cmd=CMD))
    tmux.start([sys.executable, str(script), str(runs), str(n)], _env(tmp_path, steps, 0.02))


def test_sighup_of_the_tui_leaves_its_runs_running_and_reopening_shows_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs-hup"
    store = RunStore(runs)
    tmux = Tmux(f"tt-hup-{os.getpid()}")
    try:
        _open_tui(tmux, runs, tmp_path, n=2, steps=60)
        _wait(lambda: len(store.ids()) == 2 and all(r.status == "running" for r in store.list()),
              PATIENCE, "two runs running")  # fmt: skip
        _wait(lambda: "r0" in tmux.screen() and "r1" in tmux.screen(), PATIENCE, "the TUI lists")
        tui_pid = tmux.pid()
        tmux("kill-session", "-t", "t")  # the terminal hangs up: SIGHUP to the TUI
        _wait(lambda: not _alive(tui_pid), PATIENCE, "the TUI to end")
        # The runs hold before their last step until the gate opens: still running here
        # however long the TUI took to start.
        assert all(r.status == "running" for r in store.list()), "a run died with its terminal"
    finally:
        (tmp_path / "runs-may-end").touch()
        tmux.kill()
    _wait(lambda: all(r.status == "completed" for r in store.list()), PATIENCE, "runs to end")
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    _reopen_shows_everything(store)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pilot
async def _reopen_shows_everything(store: RunStore) -> None:
    app = new_app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        for run_id in store.ids():
            app.marked[run_id] = "red"  # watched: its history is read
        for run_id in store.ids():
            events = list(store.events(run_id))
            n = sum(1 for e in events if e["kind"] == "train")
            await until(pilot, lambda r=run_id, n=n: len(app.history(r).train) == n,
                        what=f"{run_id}: all {n} train points")  # fmt: skip


def test_eight_runs_write_while_the_tui_and_two_followers_read(tmp_path: Path) -> None:
    runs = tmp_path / "runs-8"
    store = RunStore(runs)
    tmux = Tmux(f"tt-8-{os.getpid()}")
    try:
        _open_tui(tmux, runs, tmp_path, n=8, steps=40)
        (tmp_path / "runs-may-end").touch()  # these runs just run to their end
        _wait(lambda: len(store.ids()) == 8, PATIENCE, "eight runs")
        ids = store.ids()
        env = {**os.environ, **_env(tmp_path, 40, 0.02)}
        followers = [
            cli_popen(runs, "events", rid, "--follow", "--json", env=env) for rid in ids[:2]
        ]
        readers = {rid: store.events(rid) for rid in ids}
        seen: dict[str, list[dict]] = {rid: [] for rid in ids}
        errors = 0
        while any(store.info(r).alive for r in ids):
            for rid, reader in readers.items():
                try:
                    seen[rid] += reader.poll()
                except Exception:
                    errors += 1
            time.sleep(0.02)
        for rid, reader in readers.items():
            seen[rid] += reader.poll()
        outs = [f.communicate(timeout=PATIENCE) for f in followers]
        screen = tmux.screen()
        tui_alive = _alive(tmux.pid())
    finally:
        tmux.kill()
    assert errors == 0
    for rid in ids:
        events = seen[rid]
        final = events[-1]
        assert final["kind"] == "status" and final["status"] == "completed", final
        assert len(events) == final["events"] == final["events_written"], rid
        assert [e["seq"] for e in events] == list(range(len(events)))
        assert len(list(store.events(rid))) == final["events"]
        assert store.info(rid).meta.events == final["events"]  # type: ignore[union-attr]
    for rid, (out, err), f in zip(ids, outs, followers, strict=False):
        lines = [json.loads(line) for line in out.splitlines()]
        assert f.returncode == 0 and err == "", err
        assert lines == seen[rid]  # the follower saw every event once, in order
    assert tui_alive and "Traceback" not in screen and "completed" in screen, screen
