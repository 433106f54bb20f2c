"""`SourcedStore`: tuneterm's runs folder plus the runs of other tools under the watched
folders, behind the one `RunStore` interface that `ls`, `show`, `events`, `compare`, `health`
and the TUI read. A source run is read-only: it cannot be created, renamed, deleted or
labelled here, and tuneterm never signals a process it did not start."""

from __future__ import annotations

import builtins
import time
from pathlib import Path
from typing import Any

from tuneterm.sources import cache
from tuneterm.sources.points import Batch
from tuneterm.sources.run import SourceEvents, SourceRun
from tuneterm.sources.scan import Found, is_source_id, scan
from tuneterm.sources.settings import LIVE_S, load_settings
from tuneterm.store.events import EventReader
from tuneterm.store.meta import FINAL, RunLabel, RunMeta
from tuneterm.store.runs import RunInfo, RunNotFound, RunStore, number_queue

# A run whose files hold more than this, never read whole, is listed from a glance at the end
# of its newest file: its last values and tags.
GLANCE_OVER = 4 << 20
GLANCE_BYTES = 8 << 10


class ReadOnlySource(ValueError):
    """A change asked of a run tuneterm only reads."""


class SourcedStore(RunStore):
    def __init__(self, root: Path | str, folders: list[Path], live_s: float = LIVE_S) -> None:
        super().__init__(root)
        self.folders = [f.expanduser().resolve() for f in folders]
        self.live_s = live_s
        self._found: dict[str, Found] = {}
        self._runs: dict[str, SourceRun] = {}

    # -- finding ------------------------------------------------------------------------------
    def sources(self) -> dict[str, Found]:
        """The runs under the watched folders, found again on each call (new runs appear)."""
        self._found = {f.id: f for f in scan(self.folders)}
        return self._found

    def found(self, run_id: str) -> Found:
        if run_id not in self._found:
            self.sources()
        try:
            return self._found[run_id]
        except KeyError:
            raise RunNotFound(f"run = {run_id!r}: no such run under the watched folders") from None

    def ids(self) -> list[str]:
        return [*super().ids(), *self.sources()]

    # -- paths --------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if is_source_id(run_id):
            return self.found(run_id).path
        return super().run_dir(run_id)

    def meta_path(self, run_id: str) -> Path:
        """For a source run: its newest file (the health watcher re-reads when it changes)."""
        if not is_source_id(run_id):
            return super().meta_path(run_id)
        files = self._run(self.found(run_id)).reader.files()
        return max(files, key=cache.mtime_of, default=self.found(run_id).path)

    def config_path(self, run_id: str) -> Path:
        """None for a source run (a `config.toml` of the user's own is not a tuneterm config):
        a path that never exists, so readers say "no config" as for a damaged run."""
        if is_source_id(run_id):
            return cache.folder() / run_id / "none" / "config.toml"
        return super().config_path(run_id)

    def log_path(self, run_id: str) -> Path:
        if is_source_id(run_id):
            return cache.folder() / run_id / "none" / "engine.log"
        return super().log_path(run_id)

    def checkpoint_dir(self, run_id: str) -> Path:
        if is_source_id(run_id):
            return cache.folder() / run_id / "none" / "checkpoints"
        return super().checkpoint_dir(run_id)

    # -- reading ------------------------------------------------------------------------------
    def info(self, run_id: str, events: bool = False) -> RunInfo:
        if not is_source_id(run_id):
            return super().info(run_id, events)
        found = self.found(run_id)
        run = self._run(found)
        if events or run.read or not self._large(run):
            self._refresh(run)
            meta = run.meta.model_copy(deep=True)
        else:  # a listing of a large run never read: its last values only, lazily
            meta = self._glance(run).model_copy(deep=True)
        if meta.status not in FINAL:
            meta.status = "running" if time.time() - meta.updated < self.live_s else "ended"
        if meta.status != "running":
            meta.ended = meta.updated
        return RunInfo(
            run_id, found.path, meta.status, meta, RunLabel(), meta.error, source=found.source
        )

    def list(self, status: str | None = None) -> builtins.list[RunInfo]:
        own = [RunStore.info(self, i) for i in RunStore.ids(self)]
        number_queue(own)
        runs = [*own, *(self.info(i) for i in self.sources())]
        return [r for r in runs if status is None or r.status == status]

    def events(self, run_id: str) -> EventReader:
        if not is_source_id(run_id):
            return super().events(run_id)
        return SourceEvents(self.found(run_id))

    def _run(self, found: Found) -> SourceRun:
        run = self._runs.get(found.id)
        if run is None or run.found != found:
            run = self._runs[found.id] = SourceRun.open(found)
            kept = cache.load(found.id, found.path)
            if kept is not None and "glance" in kept[1]:
                run.glance = (kept[0], RunMeta.model_validate(kept[1]["glance"]))
            elif kept is not None:
                run.restore(kept[1])
                run.stamps, run.read = kept[0], True
        return run

    def _large(self, run: SourceRun) -> bool:
        if not hasattr(run.reader, "peek"):
            return False
        return sum(s[0] for s in cache.stamps(run.reader.files()).values()) > GLANCE_OVER

    def _glance(self, run: SourceRun) -> RunMeta:
        """What a listing needs of a run: its last values and tags, from the end of its newest
        file (the best of a metric needs every value: `show` reads them all, then `ls` has
        it from the cache)."""
        stamps = cache.stamps(run.reader.files())
        if run.glance is not None and run.glance[0] == stamps:
            return run.glance[1]
        batch: Batch = run.reader.peek(GLANCE_BYTES)  # type: ignore[attr-defined]
        quick = SourceRun.open(run.found)
        quick.feed(batch)
        meta = quick.meta
        meta.best, meta.started = {}, batch.facts.get("started", meta.started)
        meta.created = meta.started or 0.0
        run.glance = (stamps, meta)
        cache.save(run.found.id, run.found.path, stamps, {"glance": meta.model_dump()})
        return meta

    def _refresh(self, run: SourceRun) -> None:
        """Read what the run's files gained, if any; keep it in the cache."""
        now = cache.stamps(run.reader.files())
        if now == run.stamps:
            return
        run.poll()
        run.read, run.glance = True, None
        run.stamps = cache.stamps(run.reader.files())
        cache.save(run.found.id, run.found.path, run.stamps, run.state())

    # -- refused ------------------------------------------------------------------------------
    def _refuse(self, run_id: str, what: str) -> None:
        if is_source_id(run_id):
            source = self.found(run_id).source
            raise ReadOnlySource(
                f"run {run_id} was written by another tool ({source}, {self.found(run_id).path}): "
                f"tuneterm only reads it and cannot {what} it"
            )

    def set_label(self, run_id: str, *args: Any, **kwargs: Any) -> RunLabel:
        """RunStore.set_label, refused for a run of another tool (label.json would be written
        into its folder)."""
        self._refuse(run_id, "label")
        return super().set_label(run_id, *args, **kwargs)

    def delete(self, run_id: str) -> None:
        self._refuse(run_id, "delete")
        super().delete(run_id)


def sourced_store(runs_dir: str | Path | None = None) -> RunStore:
    """The runs folder, plus the watched folders where settings name any."""
    settings = load_settings()
    store = RunStore.from_env(runs_dir)
    if not settings.paths:
        return store
    return SourcedStore(store.root, settings.paths, settings.live_s)
