"""The engine acts on its own health alerts, on real runs: a NaN loss injected by the fault hook
fails the run with the reason and keeps the checkpoint from before it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers.cli import TINY, Cli

NAN_RUN = TINY.replace("epochs = 4", "epochs = 6")


def test_a_nan_loss_fails_the_run_and_keeps_the_checkpoint_from_before_it(
    tmp_path: Path, cli: Cli, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "nan.toml"
    cfg.write_text(NAN_RUN)
    # 84 training images, batch 16: 6 steps an epoch; the 15th forward pass (epoch 3) turns NaN
    monkeypatch.setenv("TUNETERM_FAULT", "nan@step15")
    out = cli("run", str(cfg), "--json", timeout=300)
    run = json.loads(out.stdout)
    assert out.returncode == 1, out.stdout[-2000:]
    assert run["status"] == "failed"
    assert "train loss became nan" in run["error"] and 'health.on_nan = "stop"' in run["error"]
    assert "checkpoints/last.pt is from before it" in run["error"]
    events = [json.loads(line) for line in cli("events", run["id"], "--json").stdout.splitlines()]
    trains = [e for e in events if e["kind"] == "train"]
    # --json writes a NaN as the string "NaN" (standard JSON), which float() reads back
    nan_steps = [e["step"] for e in trains if math.isnan(float(e["loss"]))]
    assert nan_steps and min(nan_steps) >= 15, nan_steps  # the NaN is in the events, as it came
    last = Path(run["path"]) / "checkpoints" / "last.pt"
    ck = torch.load(last, weights_only=True)
    assert ck["step"] < 15  # written before the NaN...
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert not any(
        e["kind"] == "checkpoint" and e["step"] >= 15 for e in events
    )  # ...and after it none


def test_skip_mode_drops_the_bad_batches_and_completes(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "skip.toml"
    cfg.write_text(TINY + '\n[health]\non_nan = "skip"\n')
    monkeypatch.setenv("TUNETERM_FAULT", "nan@step20")  # every forward from the 20th on is NaN
    run = json.loads(cli("run", str(cfg), "--json", timeout=300).stdout)
    assert run["status"] == "completed", run.get("error")
    logs = cli("events", run["id"], "--json", "--kind", "log").stdout
    assert "whose loss was not finite" in logs
    ck = torch.load(Path(run["path"]) / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


LONG = TINY.replace("epochs = 4", "epochs = 300")

NOTIFY = """\
import json, os, sys
keys = [k for k in os.environ if k.startswith("TUNETERM_")]
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({k: os.environ[k] for k in keys}) + "\\n")
"""


def _events(cli: Cli, run_id: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in cli("events", run_id, "--json").stdout.splitlines()]


def test_a_stopped_process_is_stalled_and_notified_once_with_no_tui(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import sys
    import time

    from tuneterm.store.meta import load_meta

    got = tmp_path / "notified.jsonl"
    script = tmp_path / "notify.py"
    script.write_text(NOTIFY)
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "settings.toml").write_text(
        f"[notify]\ncommand = {json.dumps([sys.executable, str(script), str(got)])}\n"
    )
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(settings))
    cfg = tmp_path / "long.toml"
    cfg.write_text(LONG + "\n[health]\nstall_seconds = 3\nstall_factor = 2\n")
    run = json.loads(cli("run", str(cfg), "--detach", "--json").stdout)
    meta = cli.runs / run["id"] / "meta.json"
    deadline = time.monotonic() + 120
    while sum(e["kind"] == "train" for e in _events(cli, run["id"])) < 3:
        assert time.monotonic() < deadline, "the run never trained"
        time.sleep(0.5)
    pid = load_meta(meta).pid
    os.kill(pid, signal.SIGSTOP)  # alive, silent: what a hung loader or a debugger looks like
    try:
        deadline = time.monotonic() + 120
        while not got.exists() or "stalled" not in got.read_text():
            assert time.monotonic() < deadline, "no stalled notification within 120 s"
            time.sleep(0.5)
        health = cli("health", run["id"], "--json")
        assert health.returncode == 1
        (report,) = json.loads(health.stdout)["runs"]
        assert [a["kind"] for a in report["alerts"]] == ["stalled"]
        assert report["alerts"][0]["hint"]
        time.sleep(5)  # two more watcher passes: still one notification
        sent = [json.loads(x) for x in got.read_text().splitlines()]
        stalled = [n for n in sent if n.get("TUNETERM_ALERT") == "stalled"]
        assert len(stalled) == 1, sent
        assert stalled[0]["TUNETERM_RUN_ID"] == run["id"]
        assert stalled[0]["TUNETERM_SEVERITY"] == "error"
    finally:
        os.kill(pid, signal.SIGCONT)
    cli("stop", run["id"], "--wait", "60", check=0)


def test_a_slowed_data_loader_shows_the_input_bound_alert(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    cfg = tmp_path / "slow.toml"
    cfg.write_text(LONG)
    monkeypatch.setenv("TUNETERM_FAULT", "slowdata@ms300")  # each batch arrives 0.3 s late
    run = json.loads(cli("run", str(cfg), "--detach", "--json").stdout)
    deadline = time.monotonic() + 120
    while True:
        out = cli("health", run["id"], "--json")
        kinds = [a["kind"] for r in json.loads(out.stdout)["runs"] for a in r["alerts"]]
        if "input_bound" in kinds:
            break
        assert time.monotonic() < deadline, f"no input_bound alert; last: {out.stdout[-500:]}"
        time.sleep(1)
    assert out.returncode == 1
    alert = next(a for r in json.loads(out.stdout)["runs"] for a in r["alerts"])
    assert "waiting for data" in alert["message"] and "data.workers" in alert["hint"]
    shown = json.loads(cli("show", run["id"], "--json").stdout)
    assert "input_bound" in [a["kind"] for a in shown["alerts"]]
    cli("stop", run["id"], "--wait", "60", check=0)
    assert cli("health", run["id"], "--json").returncode in (0, 1)
