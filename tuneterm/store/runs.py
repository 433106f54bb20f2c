"""The run store: one folder per run under a runs folder.

runs/<id>/config.toml     the config exactly as launched (resolved, every key)
runs/<id>/meta.json       status, pid + start time, host, versions, progress, metrics
runs/<id>/label.json      name, tags, notes set by people after launch
runs/<id>/events/         the TinyDB event queue (see events.py)
runs/<id>/checkpoints/    best.pt and last.pt
runs/<id>/engine.log      the engine's stdout/stderr

The store is the bottom layer but one (tuneterm.errors, proc, api, monitor): it reads and
writes run folders and knows neither the config schema nor the kinds. The launcher hands it a
`NewRun` (the config as TOML text, and the metric spec the kind reports); reading a folder's
config back as a `RunConfig` is `tuneterm.config.run_config(store, run_id)`.
"""

from __future__ import annotations

import argparse
import builtins
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.proc import ProcessGroup, ProcessIdentity, group_members, is_alive
from tuneterm.slurm.jobs import JobView
from tuneterm.slurm.states import JobState, SlurmRecord
from tuneterm.store.events import DamagedEvents, EventReader, check_events, missing_segments
from tuneterm.store.files import atomic_write_text, make_dir
from tuneterm.store.ids import check_name, check_prefix, is_run_id, new_run_id
from tuneterm.store.jobstatus import job_status
from tuneterm.store.meta import (
    ACTIVE,
    QUEUED,
    STARTUP_GRACE,
    RunLabel,
    RunMeta,
    UnreadableRun,
    load_label,
    load_meta,
    save_label,
    save_meta,
)

ENV_RUNS = "TUNETERM_RUNS"
REMOTE_SILENCE = 120.0  # seconds without a meta.json update before a remote run reads crashed


class RunNotFound(LookupError):
    pass


class AmbiguousRun(LookupError):
    pass


@dataclass(frozen=True)
class NewRun:
    """What a new run folder is made from, worked out by the launcher from the run's config."""

    config_toml: str  # the config exactly as launched (resolved, every key)
    task: str
    model: str  # what it trains, for its id and listings
    dataset: str
    epochs: int
    metrics: dict[str, Any]  # the metric spec its kind (and techniques) report, for meta.json
    name: str = ""
    parent: str = ""  # the run it starts from (model.init = "run:ID")
    parents: list[str] = field(default_factory=list)  # the runs a soup averages
    tags: list[str] = field(default_factory=list)
    notes: str = ""


@dataclass
class RunInfo:
    """What a reader knows of a run: its metadata plus the status derived from liveness."""

    id: str
    path: Path
    status: str
    meta: RunMeta | None
    label: RunLabel
    reason: str = ""  # why a run is unreadable or crashed
    queue_position: int = 0  # 1 = next to start; set by number_queue over a whole listing
    job: JobState | None = None  # a run on Slurm: its job as Slurm last listed it
    source: str = ""  # the tool that wrote a run tuneterm only reads (tuneterm.sources)

    @property
    def name(self) -> str:
        if self.label.name:
            return self.label.name
        return self.meta.name if self.meta else ""

    @property
    def alive(self) -> bool:
        return self.status in ACTIVE


def derive_status(meta: RunMeta, now: float | None = None) -> tuple[str, str]:
    """The status a reader should show: a dead process without a final status is `crashed`."""
    if meta.status not in ACTIVE:
        return meta.status, meta.error
    if meta.status == "submitted" and meta.pid <= 0:
        return "submitted", ""  # waits in a batch queue (tuneterm slurm) for as long as it takes
    if meta.pid > 0 and meta.host and meta.host != socket.gethostname():
        # A process on another machine (a cluster node) cannot be checked from here: its
        # engine refreshes meta.json every few seconds; silence means it is gone.
        age = (now or time.time()) - meta.updated
        if age > REMOTE_SILENCE:
            return "crashed", f"no word from {meta.host} for {age:.0f} s (engine pid {meta.pid})"
        return meta.status, ""
    if meta.pid <= 0:
        # The launcher wrote `created`; the engine has not yet recorded its pid.
        age = (now or time.time()) - (meta.dequeued or meta.created)
        if meta.status == "created" and age < STARTUP_GRACE:
            return "starting", ""
        return "crashed", "the engine never started (see engine.log)"
    if is_alive(ProcessIdentity(meta.pid, meta.pid_start, meta.id)):
        return meta.status, ""
    left = script_processes(meta)
    if left:
        pids = ", ".join(str(p) for p in sorted(left)[:5])
        return "orphaned", (
            f"its supervisor (pid {meta.pid}) is gone but the script's processes live on "
            f"(pid {pids}); end them with `tuneterm stop --force {meta.id}`"
        )
    # What the run's process said of its end, if anything (a script killed by SIGKILL)
    return "crashed", meta.error or f"run process {meta.pid} ended without a final status"


def script_group(meta: RunMeta, run_dir: Path | None = None) -> ProcessGroup | None:
    """The process group a script run's supervisor recorded, or None (not a script run)."""
    g = meta.group
    if g.pgid <= 0:
        return None
    where = str(run_dir) if run_dir is not None else ""
    return ProcessGroup(g.pgid, g.start, where, tuple((p, s) for p, s in g.procs))


def script_processes(meta: RunMeta, run_dir: Path | None = None) -> list[int]:
    """The live, verified processes of a script run (its supervisor aside). Without the run's
    folder, only those recorded by pid + start time: cheap enough for every `ls`; with it, the
    rest of its process group too (checked by the run folder in their environment)."""
    group = script_group(meta, run_dir)
    if group is None:
        return []
    return [p.pid for p in group_members(group, scan=run_dir is not None)]


def number_queue(runs: list[RunInfo]) -> list[RunInfo]:
    """Give each queued run its place in the queue (1 = next), ordered by meta.queue_pos."""
    queued = sorted(
        (r for r in runs if r.status == QUEUED and r.meta is not None),
        key=lambda r: (r.meta.queue_pos if r.meta else 0, r.id),
    )
    for r in runs:
        r.queue_position = 0
    for place, r in enumerate(queued, start=1):
        r.queue_position = place
    return queued


class RunStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.jobs = JobView(self.root)  # Slurm's queue, listed at most once per poll_s

    @classmethod
    def from_env(cls, runs_dir: str | Path | None = None) -> RunStore:
        return cls(runs_dir or os.environ.get(ENV_RUNS) or "runs")

    # -- paths -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise RunNotFound(f"run = {run_id!r}: not a run id")
        path = (self.root / run_id).resolve()
        if path.parent != self.root:
            raise RunNotFound(f"run = {run_id!r}: outside the runs folder")
        return path

    def meta_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "meta.json"

    def events_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "events"

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "checkpoints"

    def config_path(self, run_id: str) -> Path:
        """The config as launched; `tuneterm.config.run_config` reads it as a RunConfig."""
        return self.run_dir(run_id) / "config.toml"

    def log_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "engine.log"

    # -- listing and naming ----------------------------------------------------------------
    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if is_run_id(n))

    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique id prefix, a unique id tail, or a unique name."""
        ids = self.ids()
        if ref in ids:
            return ref
        try:
            prefix = check_prefix(ref)
        except ValueError:  # not an id prefix (a name with spaces, '../x', ...): names only
            prefix = ""
        matches = [i for i in ids if i.startswith(prefix)] if prefix else []
        if not matches and prefix:  # the id's tail, as `ls` shows it when columns are few
            matches = [i for i in ids if i.endswith("-" + prefix)]
        if not matches and ref:  # an empty ref must not match every unnamed run
            matches = [i for i in ids if self.info(i).name == ref]
        if not matches:
            raise RunNotFound(f"run = {ref!r}: no such run in {self.root}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
            raise AmbiguousRun(f"run = {ref!r}: matches {len(matches)} runs ({shown}); type more")
        return matches[0]

    def info(self, run_id: str, events: bool = False) -> RunInfo:
        """What a reader knows of a run. meta.json is always checked; with `events`, every
        event segment is read too (a damaged one makes the run `unreadable`): `show` and `resume`
        ask for that; `ls` does not, to stay cheap, and the TUI learns of damage from its
        incremental event polls."""
        path = self.run_dir(run_id)
        label = load_label(path / "label.json")
        try:
            meta = load_meta(path / "meta.json")
            if events:
                check_events(path / "events")
                missing = missing_segments(path / "events", meta.events)
                if missing:
                    raise DamagedEvents(
                        f"{missing[0]} is missing"
                        + (f" (meta.json counts {meta.events} events)" if meta.events else "")
                    )
        except UnreadableRun as exc:
            return RunInfo(run_id, path, "unreadable", None, label, exc.reason)
        if meta.id != run_id:
            reason = f"meta.json names run {meta.id!r}, not its folder {run_id!r}"
            return RunInfo(run_id, path, "unreadable", None, label, reason)
        job = self.jobs.lookup(SlurmRecord.of(meta.slurm)) if meta.slurm else None
        found = job_status(meta, job) if job is not None else None
        status, reason = found or derive_status(meta)
        return RunInfo(run_id, path, status, meta, label, reason, job=job)

    def list(self, status: str | None = None) -> list[RunInfo]:
        runs = [self.info(i) for i in self.ids()]
        number_queue(runs)
        return [r for r in runs if status is None or r.status == status]

    # -- creating and changing ---------------------------------------------------------------
    def create(self, new: NewRun, status: str = "created", queue_pos: int = 0) -> RunInfo:
        make_dir(self.root)
        for _ in range(10):
            run_id = new_run_id(new.model)
            path = self.root / run_id
            try:
                path.mkdir(mode=0o755)
                break
            except FileExistsError:
                continue
        else:
            raise RuntimeError("could not allocate a unique run id")
        atomic_write_text(path / "config.toml", new.config_toml)
        meta = RunMeta(
            id=run_id,
            name=new.name or run_id.split("-", 2)[2].rsplit("-", 1)[0],
            task=new.task,
            model=new.model,
            dataset=new.dataset,
            epochs=new.epochs,
            host=socket.gethostname(),
            parent=new.parent,
            parents=list(new.parents),
            status=status,
            queue_pos=queue_pos,
            metrics=new.metrics,
        )
        save_meta(path / "meta.json", meta)
        if new.tags or new.notes:
            save_label(path / "label.json", RunLabel(tags=new.tags, notes=new.notes))
        return self.info(run_id)

    def set_label(
        self,
        run_id: str,
        name: str | None = None,
        tags: builtins.list[str] | None = None,
        notes: str | None = None,
    ) -> RunLabel:
        path = self.run_dir(run_id) / "label.json"
        label = load_label(path)
        if name is not None:
            label.name = check_name(name) or None
        if tags is not None:
            label.tags = sorted({t.strip() for t in tags if t.strip()})
        if notes is not None:
            label.notes = notes
        save_label(path, label)
        return label

    def delete(self, run_id: str) -> None:
        """Remove a run folder. The caller checks the run is not alive (see launcher.delete)."""
        path = self.run_dir(run_id)
        # Rename first so a half-deleted folder never looks like a run.
        trash = self.root / f".deleting-{run_id}-{os.getpid()}"
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def events(self, run_id: str) -> EventReader:
        return EventReader(self.events_dir(run_id))

    def remove_half_made(self, run_id: str) -> None:
        """Undo `create` for a run whose engine never came up (nothing else refers to it)."""
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)


def runner_args(prog: str, argv: list[str] | None) -> tuple[RunStore, str, bool]:
    """`python -m PROG RUN_DIR [--resume]`, the command line every runner is started with:
    the run's store, its id, and whether it resumes."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    return RunStore(run_dir.parent), run_dir.name, bool(args.resume)
