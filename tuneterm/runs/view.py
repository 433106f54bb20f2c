"""One view of a run: progress, elapsed, ETA, status colour and best metric, computed the
same way for `ls`, `show --json` and the TUI's run list. No torch, no textual: plain values
over a `RunInfo`, rendered from the run's own metric spec (`meta.json`)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tuneterm.config import ConfigError, flatten, run_config
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.tasks import Metric, metric_spec_of_run

STATUS_STYLE: dict[str, str] = {
    "created": "cyan",
    "starting": "cyan",
    "submitted": "cyan",
    "pending": "magenta",
    "running": "bold green",
    "stopping": "yellow",
    "completed": "blue",
    "stopped": "yellow",
    "failed": "bold red",
    "crashed": "bold red",
    "orphaned": "bold magenta",
    "unreadable": "red",
    "queued": "magenta",
    "cancelled": "dim",
    "ended": "blue",
}


def status_style(status: str) -> str:
    return STATUS_STYLE.get(status, "white")


def status_text(info: RunInfo) -> str:
    """The status as listings show it: a pending Slurm job with Slurm's reason."""
    if info.status == "pending" and info.job is not None and info.job.reason:
        return f"pending ({info.job.reason})"
    return info.status


def where(info: RunInfo) -> str:
    """Where the run runs: its device, and its Slurm job when it has one."""
    m = info.meta
    device = m.device if m is not None else ""
    job = str(m.slurm.get("job_id", "")) if m is not None else ""
    return " ".join(p for p in (f"job {job}" if job else "", device) if p) or "-"


def progress(info: RunInfo) -> float | None:
    """The fraction done (1.0 once completed); from steps, else epochs; None when unknown."""
    m = info.meta
    if m is None:
        return None
    if info.status == "completed":
        return 1.0
    if m.total_steps > 0:
        return min(1.0, m.step / m.total_steps)
    if m.epochs > 0:
        return min(1.0, m.epoch / m.epochs)
    return None


def has_length(info: RunInfo) -> bool:
    """Does the run know how long it is (epochs or steps)? A script's length is its own."""
    m = info.meta
    return m is not None and (m.epochs > 0 or m.total_steps > 0)


def position(info: RunInfo) -> str:
    """Where the run is: `2/5` (epochs) for a run of known length, `step 130/400` for one that
    knows only its steps, `step 130` for one that knows no total; "" before its first report."""
    m = info.meta
    if m is None:
        return ""
    if m.epochs > 0:
        return f"{m.epoch}/{m.epochs}"
    if m.total_steps > 0:
        return f"step {m.step}/{m.total_steps}"
    return f"step {m.step}" if m.step or m.last_loss is not None or m.best else ""


def elapsed(info: RunInfo, now: float | None = None) -> float | None:
    """Seconds the run has trained. A dead run without an end time (killed, crashed) stopped
    counting at its last meta.json update, not now; the pauses between a resumed run's
    attempts do not count."""
    m = info.meta
    if m is None or m.started is None:
        return None
    end = (now or time.time()) if info.alive else (m.ended or m.updated or m.started)
    return max(0.0, end - m.started - m.paused_s)


def eta(info: RunInfo, now: float | None = None) -> float | None:
    """Seconds left at the average pace so far; None when unknown or not running."""
    frac, spent = progress(info), elapsed(info, now)
    if not info.alive or not spent or frac is None or frac <= 0.0 or frac >= 1.0:
        return None
    return spent * (1.0 - frac) / frac


@dataclass(frozen=True)
class Best:
    """The run's best value of the metric that picked best.pt, as its metric spec says."""

    metric: Metric
    value: float
    epoch: int | None

    @property
    def label(self) -> str:
        return self.metric.label

    @property
    def text(self) -> str:
        return self.metric.format(self.value)

    @property
    def cell(self) -> str:
        """`acc 0.9123`: label then value, for a table cell."""
        return f"{self.label} {self.text}"

    def rank(self) -> float:
        """A sort key where larger is better, whichever way the metric goes."""
        return self.value if self.metric.higher else -self.value


def best(info: RunInfo) -> Best | None:
    m = info.meta
    if m is None or not m.best:
        return None
    value = m.best.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return None
    spec = metric_spec_of_run(m)
    metric = spec.metric(str(m.best.get("metric") or spec.best))
    epoch = m.best.get("epoch")
    return Best(metric, float(value), int(epoch) if isinstance(epoch, int) else None)


def metric_value(info: RunInfo, metric: str) -> float | None:
    """A run's value of `metric`: a val metric at its best epoch, a test metric from its final
    test (`meta.json` `best` and `final`)."""
    m = info.meta
    if m is None:
        return None
    spec = metric_spec_of_run(m)
    is_test = metric in {t.name for t in spec.test} or metric.startswith("test_")
    value = (m.final if is_test else m.best).get(metric)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return float(value)


def flat_configs(store: RunStore, infos: Iterable[RunInfo]) -> dict[str, dict[str, Any]]:
    """Each run's config as flat dotted keys; {} for a run whose config cannot be read (a
    damaged or missing config.toml must not stop a report of the others)."""
    configs: dict[str, dict[str, Any]] = {}
    for info in infos:
        if info.source:  # a run of another tool: the hyperparameters it logged
            hparams = info.meta.hparams if info.meta else {}
            configs[info.id] = {f"hparams.{k}": v for k, v in hparams.items()}
            continue
        try:
            configs[info.id] = flatten(run_config(store, info.id))
        except (ConfigError, OSError):
            configs[info.id] = {}
    return configs


def with_parents(ids: Iterable[str], infos: Mapping[str, RunInfo]) -> list[str]:
    """Runs to compare: each one given, and after a soup its parents that `infos` holds (a
    soup is read beside the runs it averages), each once."""
    out = dict.fromkeys(ids)
    for run_id in list(out):
        info = infos.get(run_id)
        for parent in info.meta.parents if info is not None and info.meta is not None else []:
            if parent in infos:
                out.setdefault(parent, None)
    return list(out)
