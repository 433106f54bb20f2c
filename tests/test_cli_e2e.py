"""The real engine in a real subprocess, end to end through the CLI."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from helpers.cli import Cli, cli_popen, wait_for
from helpers.waiting import PATIENCE

from tuneterm.store.runs import RunStore


def _events(store: RunStore, run_id: str) -> list[dict]:
    return list(store.events(run_id))


def test_run_completes_above_chance(cli: Cli, tiny_config: Path, runs_dir: Path) -> None:
    proc = cli("run", str(tiny_config), "--json", check=0)
    data = json.loads(proc.stdout)
    assert data["status"] == "completed"
    assert data["final"]["test_acc"] > 0.6  # 3 classes: chance is 0.33
    assert data["best"]["metric"] == "val_acc"
    # the best keeps every figure of its epoch, so compare's best.val_top5 is filled
    assert {"val_acc", "val_loss", "val_top5"} <= set(data["best"])
    assert data["meta"]["versions"]["torch"]
    assert data["meta"]["pid"] > 0 and data["meta"]["pid_start"] > 0
    assert set(data["checkpoints"]) == {"best.pt", "last.pt"}
    run_dir = Path(data["path"])
    assert (run_dir / "config.toml").read_text().startswith("[run]")
    events = _events(RunStore(runs_dir), data["id"])
    kinds = [e["kind"] for e in events]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert kinds.count("val") == 4 and "test" in kinds and kinds[-1] == "status"
    assert events[-1]["status"] == "completed"
    # show / ls / events / export / compare on the finished run
    assert cli.json("ls")[0]["id"] == data["id"]
    shown = cli.json("show", data["id"][:18])  # any unique prefix names the run
    assert shown["final"]["test_acc"] == data["final"]["test_acc"]
    lines = cli("events", data["id"], "--json", "--kind", "val", check=0).stdout.splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    csv_text = cli("export", data["id"], "--format", "csv", check=0).stdout
    header = csv_text.splitlines()[0].split(",")
    assert header[:5] == ["seq", "t", "kind", "step", "epoch"] and "val_acc" in header
    exported = json.loads(cli("export", data["id"], "--format", "json", check=0).stdout)
    assert len(exported["events"]) == len(events)


def _start(cli: Cli, config: Path, *overrides: str) -> str:
    """Start a run of `config` detached, each override passed as `--set`; its id."""
    sets = [arg for o in overrides for arg in ("--set", o)]
    return cli("run", str(config), "--detach", *sets, check=0).stdout.strip()


def test_stop_then_resume_completes(cli: Cli, tiny_config: Path, runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    run_id = _start(cli, tiny_config, "train.epochs=6", "train.log_every=1")
    wait_for(lambda: any(e["kind"] == "train" and e["step"] >= 3 for e in _events(store, run_id)))
    stopped = cli.json("stop", run_id)
    assert stopped["status"] == "stopped"
    assert (runs_dir / run_id / "checkpoints" / "last.pt").is_file()
    step_at_stop = stopped["step"]
    assert cli("resume", run_id, check=0).returncode == 0
    info = store.info(run_id)
    assert info.status == "completed" and info.meta is not None and info.meta.resumes == 1
    events = _events(store, run_id)
    resume = next(e for e in events if e["kind"] == "resume")
    assert resume["from_checkpoint"] and resume["step"] >= step_at_stop - 1
    steps = [e["step"] for e in events if e["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # continued, not restarted
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert info.meta.step == info.meta.total_steps


def test_kill9_reads_crashed_then_resume_completes(
    cli: Cli, tiny_config: Path, runs_dir: Path
) -> None:
    store = RunStore(runs_dir)
    run_id = _start(cli, tiny_config, "train.epochs=6")
    wait_for(lambda: any(e["kind"] == "checkpoint" for e in _events(store, run_id)))
    pid = store.info(run_id).meta.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: store.info(run_id).status == "crashed")
    assert cli.json("ls", "--status", "crashed")[0]["id"] == run_id
    assert cli("stop", run_id).returncode == 3  # nothing to stop
    assert cli("resume", run_id, check=0).returncode == 0
    assert store.info(run_id).status == "completed"
    events = _events(store, run_id)
    assert any(e["kind"] == "resume" and e["from_checkpoint"] for e in events)
    assert [e["seq"] for e in events] == list(range(len(events)))


def test_reader_polling_while_engine_writes_sees_every_event(
    cli: Cli, tiny_config: Path, runs_dir: Path
) -> None:
    store = RunStore(runs_dir)
    run_id = _start(cli, tiny_config, "train.log_every=1", "train.epochs=4")
    reader = store.events(run_id)
    seen: list[dict] = []
    polls = 0
    while store.info(run_id).alive:
        seen += reader.poll()  # raises on a torn read; must never
        polls += 1
    seen += reader.poll()
    assert polls > 10
    assert [e["seq"] for e in seen] == list(range(len(seen)))
    assert seen[-1]["kind"] == "status" and seen[-1]["status"] == "completed"
    assert len(seen) == len(_events(store, run_id))


INVALID = [
    (["--set", "train.lr=-0.1"], "train.lr = -0.1: must be > 0"),
    (
        ["--set", "model.name=resnet19"],
        'model.name = "resnet19": unknown model; did you mean resnet18?',
    ),
    (["--set", "train.lrr=0.1"], "train.lrr = 0.1: unknown key; did you mean lr?"),
    (["--set", "train.epochs=many"], "train.epochs"),
    (
        ["--set", "data.dataset=digitz"],
        'data.dataset = "digitz": unknown choice; did you mean digits?',
    ),
    (["--set", "data.dataset=folder", "--set", "data.root=/no/such/dir"], "data.root"),
    (["--set", "model.weights=IMAGENET9K"], "model.weights"),
    (["--set", "model.init=run:nosuchrun"], "model.init"),
    (["--set", "lr"], "--set"),
    (["--set", "model.name=vit_b_16"], "data.image_size = 16: vit_b_16 cannot take 16x16 images"),
    (["--set", "model.weights=DEFAULT"], "place it at"),
    (["--name", "../../etc"], "--name"),
]


@pytest.mark.parametrize(("args", "message"), INVALID)
def test_invalid_config_exits_2_and_creates_nothing(
    cli: Cli, tiny_config: Path, runs_dir: Path, args: list[str], message: str
) -> None:
    proc = cli("run", str(tiny_config), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert list(runs_dir.iterdir()) == []


def test_toml_syntax_error_and_missing_file(cli: Cli, tmp_path: Path, runs_dir: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    proc = cli("run", str(bad))
    assert proc.returncode == 2 and "syntax error" in proc.stderr
    proc = cli("run", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "missing.toml" in proc.stderr
    assert list(runs_dir.iterdir()) == []


def test_unknown_and_ambiguous_run_names(cli: Cli) -> None:
    proc = cli("show", "nosuch")
    assert proc.returncode == 2 and "no such run" in proc.stderr
    proc = cli("show", "../etc")
    assert proc.returncode == 2
    proc = cli("show", "nosuch", "--json")
    assert json.loads(proc.stdout)["exit_code"] == 2


def test_init_writes_a_template_that_validates(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    cli("init", str(path), check=0)
    text = path.read_text()
    assert "# Peak learning rate" in text and "[train]" in text
    from tuneterm.config import load

    assert load(path).train.lr == 0.001
    assert cli("init", str(path)).returncode == 2  # no silent overwrite


def test_ctrl_c_stops_following_not_the_run(tiny_config: Path, runs_dir: Path) -> None:
    store = RunStore(runs_dir)
    env = {k: v for k, v in os.environ.items() if k != "TUNETERM_RUNS"}
    env["TUNETERM_OFFLINE"] = "1"
    follower = cli_popen(
        runs_dir,
        "run",
        str(tiny_config),
        "--set",
        "train.epochs=6",
        env=env,
        # As in a terminal: a process started in the background by a non-interactive shell
        # (a CI script's `&`) inherits SIGINT ignored, and Python then leaves it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run_id = wait_for(lambda: store.ids())[0]
    wait_for(lambda: any(e["kind"] == "train" for e in _events(store, run_id)))
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=PATIENCE)
    assert follower.returncode == 130
    assert f"tuneterm stop {run_id}" in err
    assert store.info(run_id).alive  # the run goes on without its follower
    wait_for(lambda: not store.info(run_id).alive, timeout=180)
    assert store.info(run_id).status == "completed"


@pytest.mark.timeout(900)  # ~1 min on a quiet 2-core machine; much longer under load
def test_demo_headless_shows_fine_tuning_beats_scratch(cli: Cli, runs_dir: Path) -> None:
    proc = cli("demo", "--json", timeout=900, check=0)
    result = json.loads(proc.stdout)
    assert [r["status"] for r in result["runs"]] == ["completed"] * 3
    acc = [r["final"]["test_acc"] for r in result["runs"]]
    assert result["finetune_minus_scratch"] == pytest.approx(acc[1] - acc[2])
    assert acc[1] > acc[2]  # fine-tuning from the source run beats training from scratch
    assert all("demo" in r["tags"] for r in result["runs"])
