"""Several machines over plain SSH: real sshd hosts on 127.0.0.1 (conftest's `ssh_fleet`), the
system's ssh client, the real CLI on both sides. Script runs (tests/scripts/api_loop.py)
stand for training, so no case needs torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers.cli import kill_engines_under
from helpers.sshd import HostCli, SshFleet, SshHost, launch, stored_status
from helpers.waiting import wait_for

from tuneterm.store.events import read_all

LOOP = str(Path(__file__).parent / "scripts" / "api_loop.py")


@pytest.fixture
def hcli(ssh_fleet: SshFleet, tmp_path: Path) -> Iterator[HostCli]:
    yield HostCli(ssh_fleet, tmp_path, ["a", "b"])
    for host in ssh_fleet.hosts.values():
        kill_engines_under(host.runs)


def test_ls_all_names_every_run_host_id_and_hosts_reports_each(
    hcli: HostCli, ssh_fleet: SshFleet
) -> None:
    ra = launch(hcli, "a", LOOP, "--steps", "3", "--sleep", "0")
    rb = launch(hcli, "b", LOOP, "--steps", "3", "--sleep", "0")
    wait_for(
        lambda: (
            stored_status(ssh_fleet, "a", ra) == "completed"
            and stored_status(ssh_fleet, "b", rb) == "completed"
        )
    )
    rows = hcli.json("ls", "--host", "all")
    assert {(r["host"], r["id"]) for r in rows} == {("a", f"a:{ra}"), ("b", f"b:{rb}")}
    plain = hcli("ls", "--host", "all", check=0).stdout.splitlines()
    assert plain[0].startswith("HOST\tID") and any(line.startswith(f"b\tb:{rb}") for line in plain)
    shown = hcli.json("show", "--host", "all", f"b:{rb}")
    assert shown["id"] == rb and shown["status"] == "completed"
    compared = hcli.json("compare", "--host", "all", f"a:{ra}", f"b:{rb}")
    assert [r["id"] for r in compared["runs"]] == [f"a:{ra}", f"b:{rb}"]
    assert "best.val_err" in compared["metrics"]
    assert all(set(v) == {f"a:{ra}", f"b:{rb}"} for v in compared["metrics"].values())
    report = hcli.json("hosts")
    by_host = {h["host"]: h for h in report["hosts"]}
    assert set(by_host) == {"local", "a", "b"} and report["failed"] == []
    assert all(h["reachable"] and h["protocol"] >= 1 and h["version"] for h in by_host.values())
    assert by_host["a"]["runs"] == 1 and by_host["a"]["live"] == 0
    # one master connection per host, reused by every call above
    ports = [" ".join(p.cmdline()) for p in ssh_fleet.masters()]
    for host in ("a", "b"):
        assert sum(f"-p {ssh_fleet.hosts[host].port} " in c for c in ports) == 1, ports


def test_follow_survives_a_killed_master_with_exact_counts(
    hcli: HostCli, ssh_fleet: SshFleet
) -> None:
    run_id = launch(hcli, "b", LOOP, "--steps", "100000", "--sleep", "0.05")
    follower = hcli.popen("events", "--host", "b", "--follow", "--json", run_id)
    assert follower.stdout is not None
    seen = [json.loads(follower.stdout.readline()) for _ in range(5)]
    port = f"-p {ssh_fleet.hosts['b'].port} "
    (master,) = [p for p in ssh_fleet.masters() if port in " ".join(p.cmdline())]
    master.kill()  # the link drops mid-follow, the run going on

    def masters_of_b() -> list[psutil.Process]:
        return [p for p in ssh_fleet.masters() if port in " ".join(p.cmdline())]

    wait_for(lambda: masters_of_b() not in ([], [master]))  # the follower reconnected
    seen += [json.loads(follower.stdout.readline()) for _ in range(10)]
    again = masters_of_b()
    assert len(again) == 1 and again != [master], again  # one new master, no stray link
    hcli("stop", "--host", "b", run_id, check=0)
    seen += [json.loads(line) for line in follower.stdout]  # the same buffered reader
    assert follower.wait(timeout=120) == 0, follower.stderr.read() if follower.stderr else ""
    stored = read_all(ssh_fleet.hosts["b"].runs / run_id / "events")
    assert [e["seq"] for e in seen] == [e["seq"] for e in stored]  # none lost, none twice
    assert stored[-1]["kind"] == "status" and stored[-1]["status"] == "stopped"


def test_stop_and_resume_act_on_the_runs_own_host(hcli: HostCli, ssh_fleet: SshFleet) -> None:
    run_id = launch(hcli, "a", LOOP, "--steps", "100000", "--sleep", "0.05")
    wait_for(lambda: stored_status(ssh_fleet, "a", run_id) == "running")
    hcli("stop", "--host", "all", f"a:{run_id}", check=0)
    assert stored_status(ssh_fleet, "a", run_id) == "stopped"
    assert not (ssh_fleet.hosts["b"].runs / run_id).exists()
    hcli("resume", "--host", "a", run_id, "--detach", check=0)
    wait_for(lambda: stored_status(ssh_fleet, "a", run_id) == "running")
    hcli("kill", "--host", "a", run_id, check=0)
    assert stored_status(ssh_fleet, "a", run_id) == "crashed"
    hcli("rm", "--host", "a", run_id, check=0)
    assert not (ssh_fleet.hosts["a"].runs / run_id).exists()


def test_a_stopped_host_reads_unreachable_and_the_others_go_on(
    ssh_fleet: SshFleet, tmp_path: Path
) -> None:
    gone: SshHost = ssh_fleet.start("c")
    hcli = HostCli(ssh_fleet, tmp_path, ["a", "c"])
    hcli("ls", "--host", "c", check=0)  # reached once: its master runs
    gone.stop()
    proc = hcli("ls", "--host", "all", "--json", check=7)
    assert "host c: unreachable since " in proc.stderr
    assert "host a" not in proc.stderr
    assert isinstance(json.loads(proc.stdout), list)
    report = json.loads(hcli("hosts", "--json", check=7).stdout)
    assert report["failed"] == ["c"]


def test_a_host_without_tuneterm_names_the_host_and_the_install(
    ssh_fleet: SshFleet, tmp_path: Path
) -> None:
    hcli = HostCli(ssh_fleet, tmp_path, ["a"], tuneterm="/nonexistent/bin/tuneterm")
    proc = hcli("ls", "--host", "a", check=2)
    assert "host a: tuneterm is not installed there" in proc.stderr
    assert "pip install tuneterm" in proc.stderr


def test_shell_metacharacters_reach_the_far_side_as_one_argument(
    hcli: HostCli, ssh_fleet: SshFleet, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    evil = f"x;touch {marker}"
    proc = hcli("show", "--host", "a", evil, check=2)
    assert repr(evil) in proc.stderr or evil in proc.stderr
    out = tmp_path / "argv.json"
    code = "import json,sys; open(sys.argv[1],'w').write(json.dumps(sys.argv[2:]))"
    odd = [f"$(touch {marker})", "a b", "'q'", "`id`", "*"]
    run_id = launch(hcli, "a", "-c", code, str(out), *odd)
    wait_for(lambda: stored_status(ssh_fleet, "a", run_id) in ("completed", "failed"))
    assert json.loads(out.read_text()) == odd
    assert not marker.exists()


def test_bad_hosts_settings_name_the_field_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        '[hosts.gpu2]\nssh = "gpu2"\nssh_options = ["-o", "StrictHostKeyChecking=no"]\n'
        "timeout_s = -1\n"
    )
    env = {**os.environ, "TUNETERM_CONFIG_DIR": str(tmp_path), "TUNETERM_RUNS": str(tmp_path)}

    def tuneterm(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tuneterm", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)

    proc = tuneterm("ls", "--host", "gpu2")
    assert proc.returncode == 2, proc.stderr
    assert 'hosts.gpu2.ssh_options = "StrictHostKeyChecking=no"' in proc.stderr
    assert "hosts.gpu2.timeout_s = -1" in proc.stderr
    (tmp_path / "settings.toml").write_text('[hosts.gpu2]\nssh = "gpu2"\n')
    proc = tuneterm("ls", "--host", "gpu9")
    assert proc.returncode == 2 and '--host = "gpu9": no such host' in proc.stderr


def test_the_remote_line_quotes_every_word_and_the_workdir() -> None:
    from tuneterm.hosts.transport import shell_line

    line = shell_line(["tuneterm", "show", "a;rm -rf ~", "$(id)"], "~/my work")
    assert line == "cd ~/'my work' && exec tuneterm show 'a;rm -rf ~' '$(id)'"
    assert shell_line(["x"], "/srv/a b") == "cd '/srv/a b' && exec x"
