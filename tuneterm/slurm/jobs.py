"""The store's shared view of Slurm's queue: one small file per runs folder
(`.slurm/squeue.json`) holding the last `squeue` listing. Whichever reader finds it older than
`poll_s` takes an fcntl lock, lists the queue once and replaces the file; every other reader,
in any process, reads the file. However many runs, TUIs and `ls` calls there are, a runs
folder makes at most one `squeue` call per `poll_s`.

A job that left the queue is looked up where the cluster keeps ended jobs: Slurm's accounting
(`sacct`), or a `jobcomp/filetxt` file; without either, the run's own last status stands."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tuneterm.slurm import commands
from tuneterm.slurm.commands import SlurmError
from tuneterm.slurm.states import JobState, SlurmRecord

FOLDER = ".slurm"
CACHE = "squeue.json"
MIN_POLL_S = 0.5


@dataclass
class Snapshot:
    """One listing of the queue: when it was taken (before squeue ran), every job it listed,
    the ended jobs accounting knows of, and where the jobcomp file is ("": none)."""

    taken: float
    jobs: dict[str, list[str]] = field(default_factory=dict)  # id -> state, reason, part, nodes
    ended: dict[str, str] = field(default_factory=dict)
    jobcomp: str = ""
    accounting: bool = False
    config_read: bool = False
    error: str = ""

    @classmethod
    def of(cls, raw: dict[str, object]) -> Snapshot:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})  # type: ignore[arg-type]


class JobView:
    """Slurm's state of a runs folder's jobs, shared through `ROOT/.slurm/squeue.json`."""

    def __init__(self, root: Path) -> None:
        self.dir = root / FOLDER
        self.path = self.dir / CACHE
        self._seen: tuple[int, int] | None = None
        self._snap: Snapshot | None = None
        self._jobcomp_seen: tuple[int, int] | None = None
        self._jobcomp: dict[str, str] = {}

    def lookup(self, rec: SlurmRecord) -> JobState | None:
        """The job's state; JobState(job_id, "") when it left the queue and nothing recorded how
        it ended; None when Slurm cannot be asked (or the last listing predates the job)."""
        snap = self.snapshot(rec.poll_s)
        if snap is None or snap.error or not rec.job_id:
            return None
        row = snap.jobs.get(rec.job_id)
        if row is not None:
            return JobState(rec.job_id, *row[:4])
        if snap.taken <= rec.submitted:
            return None  # listed before sbatch answered: not yet in it
        state = snap.ended.get(rec.job_id) or self._jobcomp_state(snap, rec.job_id)
        return JobState(rec.job_id, state)

    def snapshot(self, poll_s: float) -> Snapshot | None:
        snap = self._read()
        if snap is not None and time.time() - snap.taken < max(poll_s, MIN_POLL_S):
            return snap
        try:
            self.dir.mkdir(mode=0o755, exist_ok=True)
            fd = os.open(self.dir / "squeue.lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError:
            return snap  # a runs folder this user cannot write: the last listing stands
        try:
            try:  # someone else refreshing: their listing is coming; ours is the last one
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if snap is not None else 0))
            except BlockingIOError:
                return snap
            fresh = self._read()
            if fresh is not None and time.time() - fresh.taken < max(poll_s, MIN_POLL_S):
                return fresh
            snap = self._take(fresh)
            self._write(snap)
            return snap
        finally:
            os.close(fd)  # releases the lock

    def _take(self, last: Snapshot | None) -> Snapshot:
        snap = Snapshot(time.time())
        if last is not None and last.config_read:
            snap.jobcomp, snap.accounting, snap.config_read = (
                last.jobcomp, last.accounting, True)  # fmt: skip
        try:
            if not snap.config_read:
                config = commands.show_config()
                if config.get("JobCompType") == "jobcomp/filetxt":
                    snap.jobcomp = config.get("JobCompLoc", "")
                snap.accounting = config.get("AccountingStorageType") not in (
                    None, "", "accounting_storage/none")  # fmt: skip
                snap.config_read = True
            snap.jobs = {j.job_id: [j.state, j.reason, j.partition, j.nodes]
                         for j in commands.squeue()}  # fmt: skip
            if snap.accounting:
                snap.ended = commands.sacct_states()
        except SlurmError as exc:
            snap.error = str(exc)
        return snap

    def _read(self) -> Snapshot | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        if key != self._seen:
            try:
                raw = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                return self._snap
            self._snap, self._seen = Snapshot.of(raw), key
        return self._snap

    def _write(self, snap: Snapshot) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".squeue.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(snap.__dict__, fh)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _jobcomp_state(self, snap: Snapshot, job_id: str) -> str:
        if not snap.jobcomp:
            return ""
        try:
            st = os.stat(snap.jobcomp)
        except OSError:
            return ""
        key = (st.st_mtime_ns, st.st_size)
        if key != self._jobcomp_seen:
            self._jobcomp = commands.jobcomp_states(Path(snap.jobcomp))
            self._jobcomp_seen = key
        return self._jobcomp.get(job_id, "")
