"""Run summaries, comparisons and exports: the stable `--json` shapes, shared by CLI and TUI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from tuneterm.config import ConfigError, run_config
from tuneterm.runs import view
from tuneterm.runs.view import elapsed, eta, flat_configs, progress
from tuneterm.store.events import Event
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.tasks import metric_spec_of_run

__all__ = ["compare", "detail", "elapsed", "eta", "progress", "summary"]

SCHEMA = 1
# The keys of a run summary after its identity, in the order `ls --json` prints them.
SUMMARY_KEYS = (
    "task", "model", "dataset", "device", "host", "created", "started", "ended", "elapsed",
    "eta", "progress", "epoch", "epochs", "step", "total_steps", "last_loss", "throughput",
    "data_wait", "gpu_mem_peak", "best", "best_metric", "final", "params", "resumes", "parent",
    "parents", "error", "gpus",
)  # fmt: skip


def summary(info: RunInfo, alerts: list[Any] | None = None) -> dict[str, Any]:
    """One run as the `ls --json` row. Keys are stable; new keys may be added. With `alerts`
    (tuneterm.health Alerts, as `ls` and `show` give), the run's open alerts as well."""
    m = info.meta
    out: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "status": info.status,
        "reason": info.reason,
        "tags": info.label.tags,
        "notes": info.label.notes,
    }
    if info.source:  # a run of another tool (tuneterm.sources)
        out["source"] = info.source
    if m is None:
        return out
    final = {k: v for k, v in m.final.items() if k not in ("confusion", "per_class", "report")}
    derived = {
        "elapsed": elapsed(info),
        "eta": eta(info),
        "progress": round(progress(info) or 0.0, 4),
        "best_metric": _best_json(info),
        "final": final,
    }
    for key in SUMMARY_KEYS:  # meta.json's fields, and what is derived from them, in order
        out[key] = derived[key] if key in derived else getattr(m, key)
    if info.status == "queued":
        out["queue_position"] = info.queue_position  # 0 when read without the whole queue
    if m.slurm:
        out["slurm"] = slurm_job(info)
    if alerts is not None:
        out["alerts"] = [a.to_dict() for a in alerts]
    return out


def slurm_job(info: RunInfo) -> dict[str, Any]:
    """A run on Slurm: its job as Slurm last listed it (state "" once it left the queue with
    no record of how it ended; the recorded id and partition when Slurm could not be asked)."""
    rec = info.meta.slurm if info.meta is not None else {}
    job = info.job
    return {
        "job_id": job.job_id if job else rec.get("job_id", ""),
        "state": job.state if job else "",
        "reason": job.reason if job else "",
        "partition": (job.partition if job else "") or rec.get("partition", ""),
        "nodes": job.nodes if job else "",
    }


def detail(store: RunStore, info: RunInfo, alerts: list[Any] | None = None) -> dict[str, Any]:
    """`show --json`: the summary plus full metadata, config and paths."""
    out = summary(info, alerts)
    out["path"] = str(info.path)
    out["meta"] = info.meta.model_dump() if info.meta else None
    try:
        out["config"] = run_config(store, info.id).model_dump()
    except (ConfigError, OSError) as exc:
        out["config"] = None
        out["config_error"] = str(exc)
    ckpt = store.checkpoint_dir(info.id)
    out["checkpoints"] = sorted(p.name for p in ckpt.glob("*.pt")) if ckpt.is_dir() else []
    return out


def _best_json(info: RunInfo) -> dict[str, Any] | None:
    """The metric that picked best.pt, as the run's metric spec names and formats it."""
    b = view.best(info)
    if b is None:
        return None
    return {
        "metric": b.metric.name,
        "label": b.label,
        "value": b.value,
        "text": b.text,
        "higher": b.metric.higher,
        "epoch": b.epoch,
    }


RUN_FIELDS = ("last_loss", "throughput", "elapsed")


def compare_keys(infos: list[RunInfo]) -> list[str]:
    """The rows of `compare`: every run's val metrics (`best.<name>`, at its best epoch), the
    best epoch, every run's test metrics (`final.<name>`), then run-wide figures. From each
    run's metric spec, so a kind's own metrics appear without a list here."""
    val: dict[str, None] = {}
    test: dict[str, None] = {}
    for info in infos:
        if info.meta is None:
            continue
        spec = metric_spec_of_run(info.meta)
        val.update(dict.fromkeys(f"best.{m.name}" for m in spec.val))
        test.update(dict.fromkeys(f"final.{m.name}" for m in spec.test))
    return [*val, "best.epoch", *test, *RUN_FIELDS]


def _metric(row: dict[str, Any], dotted: str) -> Any:
    node: Any = row
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def compare(store: RunStore, infos: list[RunInfo]) -> dict[str, Any]:
    """Metrics side by side and the config keys whose values differ."""
    rows = [summary(i) for i in infos]
    # ...and the final figures the runs' metric specs declare beyond those (a technique's)
    declared = []
    for i in infos:
        if i.meta is not None:
            spec = metric_spec_of_run(i.meta)
            final = i.meta.final
            declared += [f"final.{m.name}" for m in (*spec.val, *spec.test) if m.name in final]
    keys = list(dict.fromkeys([*compare_keys(infos), *declared]))
    metrics = {k: {r["id"]: _metric(r, k) for r in rows} for k in keys}
    configs = flat_configs(store, infos)
    for info in infos:
        if "run.name" in configs[info.id]:  # its name now (label.json), not at launch
            configs[info.id]["run.name"] = info.name
    keys = sorted({k for c in configs.values() for k in c})
    diff = {
        k: {rid: c.get(k) for rid, c in configs.items()}
        for k in keys
        if len({json.dumps(c.get(k), sort_keys=True) for c in configs.values()}) > 1
    }
    return {"schema": SCHEMA, "runs": rows, "metrics": metrics, "config_diff": diff}


EXPORT_KINDS = ("train", "val", "test", "sys", "status")


def export_csv(events: Iterable[Event]) -> str:
    """Scalar fields of train/val/test/sys/status events, one row per event."""
    rows = [
        {k: v for k, v in e.items() if isinstance(v, int | float | str | bool) or v is None}
        for e in events
        if e.get("kind") in EXPORT_KINDS
    ]
    columns: dict[str, None] = dict.fromkeys(["seq", "t", "kind", "step", "epoch"])
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def export_json(store: RunStore, info: RunInfo, events: Iterable[Event]) -> str:
    return json.dumps(
        {"schema": SCHEMA, "run": detail(store, info), "events": list(events)}, indent=1
    )


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_metric(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def fmt_rate(value: Any) -> str:
    """A throughput, examples/s: to a tenth, whatever its size."""
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


# How `compare` shows each run-wide figure; metrics use fmt_metric
FORMATS = {"elapsed": fmt_duration, "throughput": fmt_rate}
