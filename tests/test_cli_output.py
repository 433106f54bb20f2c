"""What the CLI prints for a person: counts that match the file written, no store bookkeeping,
no colour codes in a pipe. Each runs the real CLI over a store made through the store API."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from helpers.cli import Cli
from helpers.fake_store import make_run

from tuneterm.store import EventWriter, RunStore


def test_export_out_counts_the_rows_it_wrote_and_json_is_an_export(
    cli: Cli, tmp_path: Path
) -> None:
    store = RunStore(cli.runs)
    run = make_run(store, "exp")
    with EventWriter(store.events_dir(run.id), fsync=False, background=False) as w:
        w.emit("log", level="info", message="not a row of the CSV")
    out = tmp_path / "exp.csv"
    done = cli("export", run.id, "--out", str(out), check=0)
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert f"({len(rows)} rows)" in done.stderr, done.stderr
    events = [json.loads(x) for x in cli("events", run.id, "--json", check=0).stdout.splitlines()]
    assert len(rows) < len(events)
    exported = json.loads(cli("export", run.id, "--json", check=0).stdout)
    assert len(exported["events"]) == len(events)


def test_events_does_not_print_the_stores_off_field(cli: Cli) -> None:
    store = RunStore(cli.runs)
    run = make_run(store, "script", events=False)
    with EventWriter(store.events_dir(run.id), fsync=False, background=False) as w:
        w.emit("train", step=3, off=1527, loss=0.25)
    text = cli("events", run.id, check=0).stdout
    assert "loss=0.25" in text and "off=" not in text, text
    (line,) = cli("events", run.id, "--json", check=0).stdout.splitlines()
    assert json.loads(line)["off"] == 1527  # still there for machines


def test_an_uncached_hf_model_offline_says_how_to_name_a_saved_folder(
    cli: Cli, tmp_path: Path
) -> None:
    from helpers.cli import TINY

    config = tmp_path / "hf.toml"
    config.write_text(TINY.replace('name = "resnet18"', 'name = "hf/tuneterm-test/absent"'))
    err = cli("run", str(config), check=2).stderr
    assert 'set model.name = "hf/DIR"' in err, err
    assert not cli.runs.exists() or not any(cli.runs.iterdir())  # nothing created


def test_a_crashed_run_put_back_on_the_queue_keeps_its_elapsed_time(cli: Cli) -> None:
    """A 22 s run that crashed 25 minutes ago, then `resume --queue`: ELAPSED stays 0:22, and
    the pause is not counted once it runs again."""
    import time

    from tuneterm.runs import view
    from tuneterm.store.files import atomic_write_json
    from tuneterm.store.meta import begin_resume, load_meta

    store = RunStore(cli.runs)
    run = make_run(store, "crashy", status="running")  # no process: it reads crashed
    path = store.meta_path(run.id)
    meta = load_meta(path)
    meta.started = time.time() - 1500
    meta.updated = meta.started + 22  # the engine's last word
    atomic_write_json(path, meta.model_dump())
    assert store.info(run.id).status == "crashed"
    assert round(view.elapsed(store.info(run.id)) or 0) == 22
    cli("resume", run.id, "--queue", "--no-start", check=0)
    queued = store.info(run.id)
    assert queued.status == "queued" and round(view.elapsed(queued) or 0) == 22
    rows = cli("ls", check=0).stdout
    (line,) = [ln for ln in rows.splitlines() if run.id in ln]
    assert "0:22" in line.split("\t") or " 0:22" in line, line
    meta = load_meta(path)
    now = time.time()
    begin_resume(meta, now)  # what the engine does as it starts the next attempt
    assert meta.started is not None and round(now - meta.started - meta.paused_s) == 22


def test_a_slurm_submit_that_fails_leaves_no_run_behind(
    cli: Cli, tiny_config: Path, tmp_path: Path
) -> None:
    """sbatch refusing the job (here: no such partition, or no Slurm at all) creates nothing:
    no `submitted` run that `rm` and `stop` would then refuse."""
    out = tmp_path / "job.sbatch"
    done = cli("slurm", str(tiny_config), "--partition", "no-such-partition", "--submit",
               "--out", str(out), check=None)  # fmt: skip
    assert done.returncode != 0 and "sbatch" in done.stderr, done.stderr
    assert not out.exists() and not any(cli.runs.iterdir())


def test_models_source_hf_lists_the_models_in_the_hugging_face_cache(tmp_path: Path) -> None:
    """What the editor's picker offers as `hf/ORG/NAME`, the CLI lists too."""
    import os
    import subprocess
    import sys

    (tmp_path / "hub" / "models--org--tiny-vit").mkdir(parents=True)
    (tmp_path / "hub" / "datasets--org--some-data").mkdir()  # not a model
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run([sys.executable, "-m", "tuneterm", "models", "--source", "hf", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["org/tiny-vit"] == "in the Hugging Face cache" and "DIR" in listed
    assert not any("some-data" in name for name in listed)
