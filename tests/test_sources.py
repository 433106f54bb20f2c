"""Runs written by other tools, read in place (tuneterm.sources): files made by the real
writers (SummaryWriter, a tiny HF Trainer run, Lightning's CSVLogger and TensorBoardLogger,
MLflow's file store), each written once per module; damage made by hand from those files.
Each run shows in ls, show, events and compare beside tuneterm's own, read-only."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import Cli, cli_popen
from helpers.waiting import wait_for
from helpers.writers import hf_run, lightning_run, mlflow_run, tb_run

from tuneterm.runs import report
from tuneterm.sources import SourcedStore
from tuneterm.sources.scan import run_id

OLD = 1_000_000_000.0  # an mtime long ago: a file nobody writes any more


@pytest.fixture(scope="module")
def tb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SummaryWriter run (cheap), made once for the module."""
    top = tmp_path_factory.mktemp("tb")
    tb_run(top / "tb" / "exp1", steps=20)
    return top


@pytest.fixture(scope="module")
def written(tb_folder: Path) -> Path:
    """One folder of runs from each real writer, made once for the module."""
    top = tb_folder
    hf_run(top / "hf" / "tiny-bert")
    lightning_run(top / "pl")
    mlflow_run(top / "mlruns")
    return top


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings and cache of the test's own; returns the settings folder."""
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TUNETERM_SOURCES", raising=False)
    return tmp_path / "settings"


def watch(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_SOURCES", str(folder))


def by_source(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        out.setdefault(r.get("source", "tuneterm"), []).append(r)
    return out


def events(cli: Cli, rid: str, kind: str = "") -> list[dict[str, Any]]:
    args = ["events", rid, "--json", *(["--kind", kind] if kind else [])]
    return [json.loads(line) for line in cli(*args, check=0).stdout.splitlines()]


def read(logs: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """In this process, as `ls --json` and `events --json` read it: the one run under `logs`
    (its summary) and its events."""
    store = SourcedStore(logs.parent / "runs", [logs])
    (rid,) = store.sources()
    return report.summary(store.info(rid)), [dict(e) for e in store.events(rid)]


def of_kind(evs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["kind"] == kind]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


# -- every writer, listed and shown -----------------------------------------------------------
def test_each_writer_listed_with_its_source_and_metrics(
    written: Path, env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(written)
    cli("watch", str(written), check=0)  # kept in settings.toml
    settings = (env / "settings.toml").read_text()
    assert str(written) in settings
    proc = cli("watch", str(written / "nope"), check=2)  # a folder that is not there
    assert "nope" in proc.stderr and "not a folder" in proc.stderr
    assert (env / "settings.toml").read_text() == settings
    runs = by_source(cli.json("ls"))
    assert sorted(runs) == ["hf", "lightning", "mlflow", "tb"]
    # TensorBoard: SummaryWriter's tags mapped onto tuneterm's names
    tb = {r["name"]: r for r in runs["tb"]}
    exp1 = tb["tb/exp1"]
    assert exp1["id"] == run_id("tb", (written / "tb" / "exp1").resolve())
    assert exp1["step"] == 19 and exp1["last_loss"] == pytest.approx(1 / 20)
    assert exp1["best_metric"]["metric"] == "eval_accuracy"
    assert exp1["best_metric"]["value"] == pytest.approx(19 / 20)
    # HF Trainer: curves from its TensorBoard files, best_metric from trainer_state.json
    (hf,) = runs["hf"]
    assert hf["status"] == "completed" and hf["step"] == 6 and hf["total_steps"] == 6
    assert hf["final"]["best_model_checkpoint"].endswith("checkpoint-3") or hf["final"][
        "best_model_checkpoint"
    ].endswith("checkpoint-6")
    assert isinstance(hf["final"]["best_metric"], float)
    assert hf["best_metric"]["metric"] == "eval_loss"
    # Lightning: the CSV and the TensorBoard logger of the same run, both read
    (csv,) = runs["lightning"]
    assert csv["best_metric"]["metric"] == "val_acc" and csv["last_loss"] is not None
    assert "pl/tb/lightning_logs/version_0" in tb
    # MLflow: the run's name and status from meta.yaml
    (ml,) = runs["mlflow"]
    assert ml["name"] == "mlf-tiny" and ml["status"] == "completed"
    assert ml["best_metric"]["value"] == pytest.approx(0.8)
    # the same ids at the next start; nothing written beside the runs
    assert [r["id"] for r in cli.json("ls")] == [r["id"] for rs in runs.values() for r in rs]
    assert snapshot(written) == before


def test_events_show_and_compare_read_a_tensorboard_run(
    tb_folder: Path, env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch(tb_folder / "tb", monkeypatch)
    rid = run_id("tb", (tb_folder / "tb" / "exp1").resolve())
    train = events(cli, rid, "train")
    assert [e["step"] for e in train] == list(range(20))
    assert [e["loss"] for e in train] == pytest.approx([1 / (s + 1) for s in range(20)])
    assert all(e["lr"] == pytest.approx(0.1) for e in train)
    val = events(cli, rid, "val")
    assert [e["step"] for e in val] == [4, 9, 14, 19]
    shown = cli.json("show", rid)
    assert shown["source"] == "tb" and shown["path"] == str((tb_folder / "tb" / "exp1").resolve())
    assert shown["meta"]["metrics"]["best"] == "eval_accuracy"
    text = cli("show", rid, check=0).stdout
    assert "eval accuracy 0.9500 (step 19)" in text


def test_compare_and_health_take_runs_of_other_tools(
    written: Path, env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch(written, monkeypatch)
    ids = {r["name"]: r["id"] for r in cli.json("ls")}
    data = cli.json("compare", ids["tb/exp1"], ids["pl/tb/lightning_logs/version_0"])
    assert data["metrics"]["best.eval_accuracy"][ids["tb/exp1"]] == pytest.approx(0.95)
    assert data["metrics"]["best.val_acc"][ids["pl/tb/lightning_logs/version_0"]] == 0.5
    # the hyperparameters each logged stand for a config: TensorBoard's hparams plugin here
    lr = data["config_diff"]["hparams.lr"]
    assert lr == {ids["tb/exp1"]: None, ids["pl/tb/lightning_logs/version_0"]: 0.1}
    data = cli.json("compare", ids["pl/csv/lightning_logs/version_0"], ids["mlf-tiny"])
    assert data["config_diff"]["hparams.lr"] == {  # hparams.yaml; MLflow's params/lr
        ids["pl/csv/lightning_logs/version_0"]: 0.1,
        ids["mlf-tiny"]: "0.1",
    }
    # health reads them too: a run just written is live, and its stall alert applies
    assert cli("health").returncode in (0, 1)


def test_read_only_stop_kill_label_delete_refused(
    tb_folder: Path, env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch(tb_folder / "tb", monkeypatch)
    rid = run_id("tb", (tb_folder / "tb" / "exp1").resolve())
    before = snapshot(tb_folder)
    for args in (("stop", rid), ("stop", "--force", rid), ("resume", rid), ("rm", rid)):
        proc = cli(*args, check=3)
        assert "another tool" in proc.stderr, args
    proc = cli("label", rid, "--name", "mine", check=2)
    assert "another tool" in proc.stderr
    assert snapshot(tb_folder) == before


# -- damage: a clear message naming the file, the rest of the run still shown -----------------
def copy_tb(top: Path, dest: Path) -> Path:
    shutil.copytree(top / "tb" / "exp1", dest)
    (path,) = dest.glob("events.out.tfevents.*")
    return path


def record_starts(data: bytes) -> list[int]:
    starts, pos = [], 0
    while pos + 12 <= len(data):
        starts.append(pos)
        pos += 12 + struct.unpack("<Q", data[pos : pos + 8])[0] + 4
    return starts


def test_truncated_last_record_named_and_the_rest_shown(
    tb_folder: Path, env: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_tb(tb_folder, tmp_path / "logs" / "cut")
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the writer died half-way through its last record
    os.utime(path, (OLD, OLD))
    run, evs = read(tmp_path / "logs")
    assert str(path) in run["error"] and "incomplete" in run["error"]
    train = of_kind(evs, "train")
    assert len(train) >= 18 and [e["step"] for e in train] == list(range(len(train)))
    assert any(str(path) in e["msg"] for e in of_kind(evs, "log"))


def test_bad_crc_names_the_file_and_skips_one_record(
    tb_folder: Path, env: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_tb(tb_folder, tmp_path / "logs" / "crc")
    data = bytearray(path.read_bytes())
    starts = record_starts(bytes(data))
    victim = starts[len(starts) // 2]
    data[victim + 14] ^= 0xFF  # a byte of the record's body: its data CRC no longer matches
    path.write_bytes(bytes(data))
    run, evs = read(tmp_path / "logs")
    assert str(path) in run["error"] and "CRC" in run["error"]
    steps = [e["step"] for e in of_kind(evs, "train")]
    assert 0 in steps and 19 in steps and len(steps) >= 18


def test_trainer_state_mid_write_named_and_the_rest_shown(
    written: Path, env: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "logs" / "hf"
    shutil.copytree(written / "hf" / "tiny-bert", folder)
    for p in folder.rglob("events.out.tfevents.*"):
        p.unlink()  # the curves from log_history, the Trainer's own record
    (state,) = sorted(folder.glob("checkpoint-6/trainer_state.json"))
    whole = state.read_text()
    state.write_text(whole[: len(whole) // 2])  # caught mid-write
    store = SourcedStore(tmp_path / "runs", [tmp_path / "logs"])
    (rid,) = store.sources()
    info = store.info(rid)
    assert info.source == "hf" and str(state) in info.reason
    assert info.meta is not None and info.meta.step >= 3  # from checkpoint-3's state
    state.write_text(whole)  # the write completes: read at the next look
    info = store.info(rid)
    assert info.meta is not None and info.meta.step == 6 and not info.reason
    train = of_kind([dict(e) for e in store.events(rid)], "train")
    assert [e["step"] for e in train] == list(range(1, 7))


def test_csv_header_changed_half_way_named_and_read_by_the_new_header(
    env: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "logs" / "version_0"
    folder.mkdir(parents=True)
    path = folder / "metrics.csv"
    path.write_text(
        "epoch,step,train_loss\n0,0,1.0\n0,1,0.5\n"
        "epoch,step,train_loss,val_acc\n0,2,0.4,\n0,2,,0.7\n"
    )
    run, evs = read(tmp_path / "logs")
    assert str(path) in run["error"] and "line 4" in run["error"] and "val_acc" in run["error"]
    assert [e["loss"] for e in of_kind(evs, "train")] == [1.0, 0.5, 0.4]
    assert [e["val_acc"] for e in of_kind(evs, "val")] == [0.7]


def test_jsonl_trainer_log(
    env: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLaMA-Factory's trainer_log.jsonl, in the shape it writes (no writer to hand here)."""
    folder = tmp_path / "logs" / "sft"
    folder.mkdir(parents=True)
    rows = [{"current_steps": s, "total_steps": 4, "loss": 2.0 / s, "lr": 1e-4, "epoch": s / 4,
             "percentage": 25.0 * s, "elapsed_time": "0:00:01", "remaining_time": "0:00:03"}
            for s in range(1, 5)]  # fmt: skip
    rows.append({"current_steps": 4, "total_steps": 4, "eval_loss": 0.3})
    (folder / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run, _ = read(tmp_path / "logs")
    assert run["source"] == "jsonl" and run["total_steps"] == 4 and run["last_loss"] == 0.5
    assert run["best_metric"]["metric"] == "eval_loss"


# -- the cache ------------------------------------------------------------------------------
def test_second_start_reads_only_what_was_appended(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "logs" / "grow"
    (path,) = tb_run(folder, steps=10).glob("events.out.tfevents.*")
    first = SourcedStore(tmp_path / "runs", [tmp_path / "logs"])
    (rid,) = first.sources()
    assert first.info(rid).meta.step == 9
    size = path.stat().st_size
    assert list((tmp_path / "cache" / "tuneterm" / "sources").glob(f"{rid}.json"))
    # a second process starts where the first stopped: its reader resumes at the cached offset
    second = SourcedStore(tmp_path / "runs", [tmp_path / "logs"])
    run = second._run(second.found(rid))
    assert run.reader.state()[str(path)][0] == size and run.meta.step == 9
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder), filename_suffix=".more") as w:
        for s in range(10, 13):
            w.add_scalar("train/loss", 0.01, s)
    info = second.info(rid)
    assert info.meta.step == 12 and info.meta.last_loss == pytest.approx(0.01)
    assert run.reader.state()[str(path)][0] == size  # the old file was not read again


# -- live -----------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, time
    from torch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(sys.argv[1], flush_secs=1)
    for s in range(int(sys.argv[2])):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
        w.flush()
        time.sleep(0.05)  # a step of training
    w.close()
    """
)


@pytest.fixture
def live_writer(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    folder = tmp_path / "logs" / "live"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), "30"])
    yield proc, folder
    proc.kill()
    proc.wait()


def test_live_run_followed_by_events_and_the_tui(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    live_writer: tuple[subprocess.Popen[bytes], Path],
) -> None:  # fmt: skip
    import asyncio

    from helpers.fake_store import new_app, until

    from tuneterm.tui.widgets.runtable import RunTable

    proc, folder = live_writer
    env.mkdir(parents=True)
    (env / "settings.toml").write_text("[sources]\nlive_s = 3\n")
    watch(tmp_path / "logs", monkeypatch)
    wait_for(lambda: list(folder.glob("events.out.tfevents.*")))
    rid = run_id("tb", folder.resolve())
    follower = cli_popen(tmp_path / "runs", "events", rid, "--follow", "--json", "--kind", "train",
                         env=dict(os.environ))  # fmt: skip
    store = SourcedStore(tmp_path / "runs", [tmp_path / "logs"], live_s=3)

    async def tui() -> list[int]:
        app = new_app(store)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(
                pilot,
                lambda: (
                    app.screen.query(RunTable) and app.screen.query_one(RunTable).row_count == 1
                ),
            )
            app.screen.query_one(RunTable).move_cursor(row=0)
            await until(pilot, lambda: len(app.history(rid).train) == 30, what="30 train rows")
            series = app.history(rid).train
            return [int(s) for s in series.cols["step"][: series.n]]

    assert asyncio.run(tui()) == list(range(30))
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    steps = [json.loads(line)["step"] for line in out.splitlines()]
    assert steps == list(range(30))  # every value once, in order
    assert proc.wait(timeout=60) == 0
