"""Script runs under faults, through the CLI with real processes: a supervisor killed with -9,
a script that ignores SIGTERM, one that exits leaving children on its pipe, output that looks
like markup or carries escape codes, non-finite values, a flood of metric names, damaged
stores, and a resume from another folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers.cli import Cli, wait_for
from helpers.scripts import PY, events, launch, script, status, wait_events, wait_status

from tuneterm.config import run_config
from tuneterm.store.runs import RunStore


def _run_processes(run_dir: Path) -> list[psutil.Process]:
    """Every live process that carries the run's folder in its environment (what a script run
    starts), the supervisor aside."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE or "tuneterm.script" in " ".join(
                proc.info["cmdline"] or []
            ):
                continue
            if proc.environ().get("TUNETERM_RUN_DIR") == str(run_dir):
                out.append(proc)
        except psutil.Error:
            continue
    return out


@pytest.fixture(autouse=True)
def _no_leftovers(runs_dir: Path) -> Iterator[None]:
    """A failed test must not leave a run's processes behind (an orphan is none of the
    supervisor's, so `kill_engines_under` would miss it)."""
    yield
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("TUNETERM_RUN_DIR", "").startswith(str(runs_dir)):
                proc.kill()


def _meta(runs: Path, run_id: str) -> dict:
    return json.loads((runs / run_id / "meta.json").read_text())


def _cli_in(cwd: Path, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI called from another folder."""
    env = {k: v for k, v in os.environ.items() if k != "TUNETERM_RUNS"}
    return subprocess.run(
        [sys.executable, "-m", "tuneterm", "--runs-dir", str(runs), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env=env,
    )


def test_a_supervisor_killed_with_9_takes_its_script_along_and_leftovers_read_orphaned(
    cli: Cli, runs_dir: Path
) -> None:
    run_id = launch(cli, PY, script("quiet_api.py"), "--child")
    run_dir = runs_dir / run_id
    wait_events(runs_dir, run_id, "train", 3, timeout=60)
    # The sampler has recorded the script and its `sleep` (own session) by pid + start time.
    wait_for(lambda: len(_meta(runs_dir, run_id)["group"]["procs"]) >= 2, timeout=60)
    meta = _meta(runs_dir, run_id)
    script_pid, supervisor = meta["group"]["pgid"], meta["pid"]
    os.kill(supervisor, signal.SIGKILL)
    # PR_SET_PDEATHSIG: the script dies with its supervisor, quiet as it is.
    wait_for(lambda: not psutil.pid_exists(script_pid) or _zombie(script_pid), timeout=60)
    # Its `sleep` lives on: the run says so, instead of `crashed`.
    wait_for(lambda: status(runs_dir, run_id) == "orphaned", timeout=60)
    row = next(r for r in cli.json("ls") if r["id"] == run_id)
    assert row["status"] == "orphaned" and "stop --force" in row["reason"]
    assert "orphaned" in cli("show", run_id, check=0).stdout
    # resume refuses while any process of the run lives: no second copy.
    proc = cli("resume", run_id, "--detach")
    assert proc.returncode == 3 and "stop --force" in proc.stderr, proc.stderr
    assert _meta(runs_dir, run_id)["pid"] == supervisor
    assert [p.name() for p in _run_processes(run_dir)] == ["sleep"]
    assert cli("rm", run_id).returncode == 3  # deleting it would leave them unseen
    cli("stop", run_id, "--force", check=0)
    assert _run_processes(run_dir) == []
    assert status(runs_dir, run_id) == "crashed"
    # Now it resumes, once.
    cli("resume", run_id, "--detach", check=0)
    wait_events(runs_dir, run_id, "train", len(events(runs_dir, run_id, "train")) + 2, 60)
    scripts = [p for p in _run_processes(run_dir) if "quiet_api.py" in " ".join(p.cmdline())]
    assert len(scripts) == 1
    cli("stop", run_id, "--force", check=0)
    wait_for(lambda: _run_processes(run_dir) == [], timeout=30)


def _folders(tmp_path: Path, *names: str) -> list[Path]:
    """Empty folders under tmp_path, to start the CLI from one and then from another."""
    folders = [tmp_path / name for name in names]
    for folder in folders:
        folder.mkdir()
    return folders


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_stop_kills_a_script_that_ignores_sigterm_and_its_exit_code_says_so(
    cli: Cli, runs_dir: Path
) -> None:
    def ready(run_id: str) -> None:
        wait_for(lambda: any(e["msg"] == "ready" for e in events(runs_dir, run_id, "log")), 60)

    # Killed after its grace period: exit 5, status stopped, nothing of it left.
    grace = ("--set", "script.stop_grace_s=1")
    run_id = launch(cli, PY, script("ignores_term.py"), extra=grace)
    ready(run_id)
    proc = cli("stop", run_id, "--wait", "60")
    assert proc.returncode == 5 and "killed" in proc.stdout, (proc.stdout, proc.stderr)
    assert status(runs_dir, run_id) == "stopped"
    assert _meta(runs_dir, run_id)["stop_outcome"] == "killed"
    assert "stop_grace_s" in _meta(runs_dir, run_id)["error"]
    assert _run_processes(runs_dir / run_id) == []
    # Still alive when the wait runs out (grace 30 s): exit 6, then --force ends it.
    run_id = launch(cli, PY, script("ignores_term.py"))
    ready(run_id)
    proc = cli("stop", run_id, "--wait", "0.5")
    assert proc.returncode == 6 and "still running" in proc.stderr, (proc.stdout, proc.stderr)
    assert status(runs_dir, run_id) == "running"
    cli("stop", run_id, "--force", check=0)
    assert _run_processes(runs_dir / run_id) == []
    # A script that ends on SIGTERM: exit 0, stopped cleanly.
    run_id = launch(cli, PY, script("ignores_term.py"), "--polite")
    ready(run_id)
    cli("stop", run_id, "--wait", "60", check=0)
    assert status(runs_dir, run_id) == "stopped"
    assert _meta(runs_dir, run_id)["stop_outcome"] == "clean"


def test_a_run_ends_when_its_script_exits_though_children_hold_its_output(
    cli: Cli, runs_dir: Path
) -> None:
    proc = cli("run", "--", PY, script("leaves_children.py"), timeout=120, check=0)
    run_id = proc.stdout.split("run ")[-1].split(":")[0]
    assert status(runs_dir, run_id) == "completed"
    assert _run_processes(runs_dir / run_id) == []  # both sleeps were ended
    (warning,) = [e for e in events(runs_dir, run_id, "log") if e["level"] == "warning"]
    assert "leaving 2 process(es)" in warning["msg"] and "sleep 1000" in warning["msg"]
    (done,) = [e for e in events(runs_dir, run_id, "status") if e["status"] == "completed"]
    assert done["events"] == len(events(runs_dir, run_id)) == _meta(runs_dir, run_id)["events"]


def test_output_and_names_reach_the_terminal_as_text_without_control_codes(
    cli: Cli, runs_dir: Path
) -> None:
    proc = cli("run", "--", PY, script("odd_output.py"), timeout=120, check=0)
    shown = proc.stdout
    assert "saved to [/data/ckpt] ok" in shown  # rich markup never read from it
    assert "[rank: 0] hello [bold]x[/bold] [/]" in shown
    assert "red RED c1 X nel end" in shown
    run_id = shown.split("run ")[-1].split(":")[0]
    listing = cli("events", run_id, check=0).stdout
    for text in (shown, listing):
        assert not any(c in text for c in "\x1b\x9b\x85\x07"), repr(text)
    assert re.search(r"\bval_x=1\b", listing) and re.search(r"\bab=2\b", listing)  # names too
    logs = [e["msg"] for e in events(runs_dir, run_id, "log")]
    assert "red RED c1 X nel end" in logs


def _not_json(token: str) -> None:
    raise AssertionError(f"{token} is not JSON")


def test_non_finite_values_from_log_are_kept_and_raise_nan_loss(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("odd_output.py"), "--fail")
    wait_status(runs_dir, run_id, "failed", 60)
    losses = [e["loss"] for e in events(runs_dir, run_id, "train")]
    assert losses[:2] == [float("inf"), float("-inf")] and losses[2] != losses[2]
    assert [e["val_y"] for e in events(runs_dir, run_id, "val") if "val_y" in e] == [float("-inf")]
    # --json is standard JSON, which jq reads: the non-finite values as strings float() reads
    printed = cli("events", run_id, "--json", "--kind", "train").stdout.splitlines()
    shown = [json.loads(line, parse_constant=_not_json) for line in printed]
    assert [e["loss"] for e in shown][:3] == ["Infinity", "-Infinity", "NaN"]
    show = json.loads(cli("show", run_id, "--json").stdout, parse_constant=_not_json)
    assert show["last_loss"] in ("Infinity", "-Infinity", "NaN")
    proc = cli("health", run_id, "--json")
    assert proc.returncode == 1, proc.stdout
    (alert,) = [a for r in json.loads(proc.stdout)["runs"] for a in r["alerts"]]
    assert alert["kind"] == "nan_loss" and "inf at step 1" in alert["message"]


def test_ten_thousand_metric_names_keep_the_spec_bounded_and_every_event(
    cli: Cli, runs_dir: Path
) -> None:
    run_id = launch(cli, PY, script("many_names.py"), "10000")
    wait_status(runs_dir, run_id, "completed", 120)
    spec = _meta(runs_dir, run_id)["metrics"]
    assert len(spec["val"]) == 300  # script.max_metrics
    warnings = [e for e in events(runs_dir, run_id, "log") if e["level"] == "warning"]
    assert len(warnings) == 1 and "'m300_loss'" in warnings[0]["msg"]
    vals = events(runs_dir, run_id, "val")
    assert len(vals) == 10000 and vals[-1]["m9999_loss"] == 0.5


def test_damaged_meta_and_missing_segments_are_reported(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("many_names.py"), "2100")  # 4,200+ events: 3 segments
    wait_status(runs_dir, run_id, "completed", 120)
    run = runs_dir / run_id
    count = _meta(runs_dir, run_id)["events"]
    assert count > 4000 and len(list(run.glob("events/*.json"))) == 3
    (done,) = [e for e in events(runs_dir, run_id, "status") if e["status"] == "completed"]
    assert done["events"] == count
    for segment in ("000001.json", "000002.json"):  # in the middle, then the last
        keep = (run / "events" / segment).read_bytes()
        (run / "events" / segment).unlink()
        proc = cli("events", run_id, "--json")
        assert proc.returncode == 1 and f"events/{segment} is missing" in proc.stderr
        assert "seq" not in proc.stdout  # no event printed before the error
        export = cli("export", run_id)
        assert export.returncode == 1 and f"events/{segment} is missing" in export.stderr
        show = cli("show", run_id)
        assert "unreadable" in show.stdout and f"events/{segment}" in show.stdout
        (run / "events" / segment).write_bytes(keep)
    for damage in (b'{"id": "x", "status": "runn', b"\x00garbage", b"[]", b'{"id": 3}'):
        (run / "meta.json").write_bytes(damage)
        show = cli("show", run_id)
        assert show.returncode == 0 and "Traceback" not in show.stderr, show.stderr
        assert "unreadable" in show.stdout


def test_the_launch_folder_is_where_resume_runs_the_script(
    cli: Cli, runs_dir: Path, tmp_path: Path
) -> None:
    here, elsewhere = _folders(tmp_path, "project", "elsewhere")
    shutil.copy(script("in_launch_folder.py"), here / "train.py")
    proc = _cli_in(here, runs_dir, "run", "--detach", "--", PY, "train.py")
    run_id = proc.stdout.split()[0]
    wait_status(runs_dir, run_id, "failed", 60)
    cfg = run_config(RunStore(runs_dir), run_id)
    assert cfg.script.cwd == str(here)
    proc = _cli_in(elsewhere, runs_dir, "resume", run_id, "--detach")
    assert proc.returncode == 0, proc.stderr
    wait_status(runs_dir, run_id, "completed", 60)  # it found train.py and its marker
    # A second run, whose folder is then gone: resume says so, exit 2, and starts nothing.
    (here / "ran-once").unlink()
    run_id = _cli_in(here, runs_dir, "run", "--detach", "--", PY, "train.py").stdout.split()[0]
    wait_status(runs_dir, run_id, "failed", 60)
    shutil.rmtree(here)
    proc = _cli_in(elsewhere, runs_dir, "resume", run_id, "--detach")
    assert proc.returncode == 2 and "script.cwd" in proc.stderr and str(here) in proc.stderr
    assert status(runs_dir, run_id) == "failed"


def test_a_sweep_queued_from_one_folder_runs_there_whoever_started_the_scheduler(
    cli: Cli, runs_dir: Path, tmp_path: Path
) -> None:
    sched_home, project = _folders(tmp_path, "a", "b")
    (project / "train.py").write_text("import sys\nprint('loss:', sys.argv[-1], flush=True)\n")
    started = _cli_in(sched_home, runs_dir, "queue", "start", "--cpu-slots", "2")
    assert started.returncode == 0, started.stderr
    proc = _cli_in(project, runs_dir, "sweep", "--queue", "--name", "g", "--grid",
                   "x=0.5,0.25", "--json", "--", PY, "train.py", "--x", "{x}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ids = [r["id"] for r in json.loads(proc.stdout)["runs"]]
    busy = ("queued", "created", "starting", "running")
    for run_id in ids:

        def ended(r: str = run_id) -> bool:
            return status(runs_dir, r) not in busy

        wait_for(ended, timeout=120)
        assert status(runs_dir, run_id) == "completed", runs_dir / run_id / "engine.log"
    assert sorted(events(runs_dir, i, "train")[0]["loss"] for i in ids) == [0.25, 0.5]
    cli("queue", "stop", check=0)
