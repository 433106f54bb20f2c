"""The fleet view (`tuneterm tui --host ...`) through a real Pilot, over the real sshd hosts of
conftest's `ssh_fleet`: both hosts' runs in one list, `/host:b` filtering, each host's GPUs
(none here: the pane says so), and a stop that reaches the run's own host."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import kill_engines_under
from helpers.fake_store import pilot
from helpers.sshd import HostCli, SshFleet, launch, stored_status
from helpers.waiting import until
from textual.widgets import DataTable, Input, Static

from tuneterm.hosts import load_hosts
from tuneterm.tui.screens.fleet import FleetApp, FleetScreen

LOOP = str(Path(__file__).parent / "scripts" / "api_loop.py")


@pilot
async def test_fleet_view_filters_by_host_and_stops_on_the_runs_own_host(
    ssh_fleet: SshFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hcli = HostCli(ssh_fleet, tmp_path, ["a", "b"])
    for key in ("TUNETERM_CONFIG_DIR", "TUNETERM_SSH_DIR"):
        monkeypatch.setenv(key, hcli.env[key])
    done = launch(hcli, "a", LOOP, "--steps", "2", "--sleep", "0")
    live = launch(hcli, "b", LOOP, "--steps", "100000", "--sleep", "0.05")
    try:
        app = FleetApp(load_hosts().pick(["a", "b"]))
        async with app.run_test(size=(140, 40)) as drive:
            screen = app.screen
            assert isinstance(screen, FleetScreen)
            table = screen.query_one(DataTable)

            def keys() -> set[str]:
                return {str(k.value) for k in table.rows}

            await until(drive, lambda: {f"a:{done}", f"b:{live}"} <= keys(), what="both hosts")
            await until(drive, lambda: "tuneterm" in str(screen.query_one("#fleet-hosts",
                        Static).render()), what="GPU sample")  # fmt: skip
            hosts_text = str(screen.query_one("#fleet-hosts", Static).render())
            assert "a " in hosts_text and "b " in hosts_text and "no GPUs" in hosts_text
            await drive.press("slash", *"host:b", "enter")
            await until(drive, lambda: f"b:{live}" in keys(), what="host b's runs")
            assert all(k.startswith("b:") for k in keys())
            await drive.press("slash")
            screen.query_one("#fleet-filter", Input).value = f"host:b {live}"
            await drive.press("enter")
            await until(drive, lambda: keys() == {f"b:{live}"}, what="one run")
            await until(drive, lambda: stored_status(ssh_fleet, "b", live) == "running")
            detail = screen.query_one("#fleet-detail", Static)
            await until(drive, lambda: "train" in str(detail.render()), what="live events")
            await drive.press("s")
            await until(drive, lambda: stored_status(ssh_fleet, "b", live) == "stopped")
            await drive.press("q")
    finally:
        kill_engines_under(ssh_fleet.hosts["b"].runs)
