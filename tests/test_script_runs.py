"""Your own script as a run: metrics from printed lines, from your own patterns and from the
API, on real subprocesses; no metric lost to a kill -9 right after log(); a plain PyTorch loop
through launch, stop, resume, kill -9 and resume; bad commands refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli import Cli
from helpers.scripts import (
    PY,
    events,
    launch,
    script,
    stop_resume_kill_resume,
    wait_status,
)

from tuneterm.store.runs import RunStore


def test_printed_metrics_in_every_form_and_a_log_that_survives_junk(
    cli: Cli, runs_dir: Path
) -> None:
    run_id = launch(cli, PY, script("printed_forms.py"))
    wait_status(runs_dir, run_id, "completed", 60)
    vals = events(runs_dir, run_id, "val")
    assert [{k: v for k, v in e.items() if k not in ("seq", "t", "kind", "step", "epoch")}
            for e in vals] == [{"acc": 0.5}, {"val_f1": 0.25}, {"bar_metric": 0.3}]  # fmt: skip
    assert vals[0]["epoch"] == 1.0 and vals[1]["step"] == 2
    (train,) = events(runs_dir, run_id, "train")
    assert train["loss"] == 0.41 and train["lr"] == 5e-05 and train["epoch"] == 1.0
    logs = [e["msg"] for e in events(runs_dir, run_id, "log") if e["level"] == "out"]
    bars = [m for m in logs if m.startswith("train:")]
    assert bars == ["train: 99%|###| 3/3 [00:01<00:02, 5.00it/s, bar_metric=0.3]"]  # last state
    junk = next(m for m in logs if "binary junk" in m)
    assert "\x00" not in junk and "\x1b" not in junk and "[31m" not in junk
    assert "\ufffd" in junk  # bytes that are not UTF-8, replaced
    long = next(m for m in logs if m.startswith("xxx"))
    assert long.endswith("[...]") and len(long) < 5000
    raw = (runs_dir / run_id / "output.log").read_bytes()
    assert b"x" * 100_000 in raw and b"\xff\xfe\x00" in raw  # the raw log keeps every byte
    assert "mine" not in json.dumps(vals)
    shown = cli("show", run_id, check=0)  # the reader copes with all of it
    assert run_id in shown.stdout


def test_own_patterns_replace_the_built_in_ones(cli: Cli, runs_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "script.toml"
    cfg.write_text(
        f"[script]\ncommand = [{json.dumps(PY)}, {json.dumps(script('printed_forms.py'))}]\n"
        "patterns = ['mine (?P<mine>\\d+) of (?P<of>\\d+)']\n"
    )
    run_id = cli("run", str(cfg), "--detach", check=0).stdout.split()[0]
    wait_status(runs_dir, run_id, "completed", 60)
    vals = events(runs_dir, run_id, "val")
    assert [(e["mine"], e["of"]) for e in vals] == [(7.0, 9.0)]
    assert events(runs_dir, run_id, "train") == []


def test_api_metrics_in_order_and_none_lost_to_kill_9_after_log(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(cli, PY, script("api_loop.py"), "--steps", "12", "--die-at", "5")
    wait_status(runs_dir, run_id, "crashed", 60)
    # The reason names the kill, and the alert's hint (`events --kind error`) shows it
    assert RunStore(runs_dir).info(run_id).reason == "script killed by SIGKILL"
    errors = cli("events", run_id, "--kind", "error").stdout
    assert "script killed by SIGKILL" in errors
    health = json.loads(cli("health", run_id, "--json", check=1).stdout)
    (alert,) = health["runs"][0]["alerts"]
    assert alert["message"] == "script killed by SIGKILL", alert
    # log() at step 5 returned, then the script got SIGKILL: step 5 is there all the same
    assert [e["step"] for e in events(runs_dir, run_id, "train")] == list(range(6))
    meta = RunStore(runs_dir).info(run_id).meta
    assert meta is not None
    assert meta.metrics["best"] == "val_err" and meta.metrics["higher"] is False
    assert meta.best["metric"] == "val_err" and meta.best["value"] == 0.5 / 6
    cfg = (runs_dir / run_id / "config.toml").read_text()
    # resume: the same command again (with --die-at 5, but the state file says go on from 6)
    assert "die-at" in cfg
    cli("resume", run_id, "--detach", check=0)
    wait_status(runs_dir, run_id, "completed", 60)
    steps = [e["step"] for e in events(runs_dir, run_id, "train")]
    assert steps == list(range(12))  # each once, in order
    vals = [e["val_err"] for e in events(runs_dir, run_id, "val")]
    assert vals == [0.5 / (s + 1) for s in range(12)]
    show = cli.json("show", run_id)
    assert show["status"] == "completed"


def test_plain_torch_loop_stop_resume_kill_resume(cli: Cli, runs_dir: Path) -> None:
    run_id = launch(
        cli,
        PY,
        script("plain_torch.py"),
        "--steps",
        "50",
        "--lr",
        "0.05",
        extra=(
            "--set",
            'script.resume_args=["--resume", "{checkpoint_dir}/last.pt"]',
            "--name",
            "plain",
            "--tag",
            "e2e",
        ),
    )
    stop_resume_kill_resume(cli, runs_dir, run_id, "train", 3)
    log = (runs_dir / run_id / "output.log").read_text()
    assert log.count("resumed from step") == 2
    steps = [e["step"] for e in events(runs_dir, run_id, "train")]
    assert steps == sorted(steps) and steps[-1] == 49 and len(set(steps)) == len(steps)
    losses = [e["loss"] for e in events(runs_dir, run_id, "train")]
    assert losses[-1] < losses[0]
    info = RunStore(runs_dir).info(run_id)
    assert info.meta is not None and info.meta.resumes == 2
    assert info.name == "plain" and "e2e" in info.label.tags
    rows = cli.json("ls")
    row = next(r for r in rows if r["id"] == run_id)
    assert row["task"] == "script"


def test_bad_commands_exit_2_and_create_nothing(cli: Cli, runs_dir: Path) -> None:
    cases = [
        ((), "nothing after --"),
        (("no-such-program-xyz",), "cannot be found"),
        ((PY, "missing_script.py"), "no such file"),
    ]
    for command, words in cases:
        proc = cli("run", "--", *command)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    proc = cli("run", "--set", 'script.resume_args=["--r", "{ckpt}"]', "--", PY, "-c", "0")
    assert proc.returncode == 2 and "{ckpt}" in proc.stderr and "resume_args" in proc.stderr
    proc = cli("sweep", "--grid", "lr=1,2", "--", PY, script("plain_torch.py"), "--lr", "{lr}",
               "--steps", "{steps}")  # fmt: skip
    assert proc.returncode == 2 and "{steps}" in proc.stderr
    assert list(runs_dir.iterdir()) == []


def test_sweep_over_a_command_fills_it_and_ranks_by_the_reported_metric(
    cli: Cli, runs_dir: Path
) -> None:
    proc = cli("sweep", "--now", "--name", "g", "--grid", "steps=3,6", "--json", "--",
               PY, script("api_loop.py"), "--steps", "{steps}", check=0)  # fmt: skip
    ids = [r["id"] for r in json.loads(proc.stdout)["runs"]]
    for run_id in ids:
        wait_status(runs_dir, run_id, "completed", 60)
    best = cli.json("sweep-best", "g")
    assert best["metric"] == "val_err" and best["keys"] == ["args.steps"]
    # val_err is lower-better: the 6-step run got lower
    assert best["best"]["params"] == {"args.steps": 6}
