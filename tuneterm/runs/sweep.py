"""Sweeps: many runs from one config, over a grid or random samples of config keys.

`--grid train.lr=1e-3,3e-4 --grid freeze.strategy=none,linear_probe` crosses the values;
`--random N` draws N points from `--range key=LO:HI[:log|:int]` and `--choice key=a,b` (and
`--grid` keys) with `--seed`. Values are read like `--set` (TOML, else a bare string). Every
point's config is validated before any run is created. The runs carry the tag
`sweep:<group>`; RUNS/.sweeps/<group>.json records the swept keys and each run's values.
"""

from __future__ import annotations

import difflib
import itertools
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuneterm.config import (
    ConfigError,
    ConfigIssue,
    RunConfig,
    apply_overrides,
    flatten,
    from_dict,
)
from tuneterm.runs.view import flat_configs, metric_value
from tuneterm.store.files import atomic_write_json, make_dir, read_json
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.tasks import MetricSpec, metric_spec_of_run

GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
TAG_PREFIX = "sweep:"
SWEEPS_DIR = ".sweeps"
SCALES = ("lin", "log", "int", "logint")
MAX_POINTS = 1000


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[str, ...] = ()  # raw TOML texts (grid / choice)
    low: float = 0.0
    high: float = 0.0
    scale: str = ""  # set for a range


@dataclass
class Point:
    index: int  # 1-based
    overrides: list[str]  # "key=raw" as for --set
    cfg: RunConfig | None = None
    params: dict[str, Any] = field(default_factory=dict)  # key -> value after validation

    def describe(self) -> str:
        return ", ".join(self.overrides)


def _all_keys() -> list[str]:
    return list(flatten(RunConfig()))


def _check_key(key: str, flag: str, raw: str) -> None:
    keys = _all_keys()
    if key in keys:
        return
    section = key.split(".")[-1]  # model.freeze: `freeze` is a section of its own
    in_section = [k for k in keys if k.startswith(section + ".")]
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if in_section:
        hint = f"did you mean {in_section[0]} (or another {section}.* key)?"
    elif close:
        hint = f"did you mean {close[0]}?"
    else:
        hint = "keys are section.key, as in the config template (tuneterm init)"
    raise ConfigError([ConfigIssue(key, raw, f"unknown config key (in {flag}); {hint}")])


def split_values(raw: str) -> list[str]:
    """`1e-3,3e-4` -> two values; commas inside [...], {...} or quotes do not split."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def parse_values(item: str, flag: str) -> Axis:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([ConfigIssue(flag, item, "expected section.key=v1,v2,...")])
    _check_key(key, flag, raw)
    values = split_values(raw)
    if not raw.strip() or any(v == "" for v in values):
        raise ConfigError([ConfigIssue(key, raw, f"empty value in {flag}")])
    return Axis(key, tuple(values))


def parse_range(item: str) -> Axis:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([ConfigIssue("--range", item, "expected section.key=LO:HI[:log|:int]")])
    _check_key(key, "--range", raw)
    parts = raw.split(":")
    scale = parts[2] if len(parts) == 3 else "lin"
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(
            [ConfigIssue(key, raw, "--range needs LO:HI or LO:HI:SCALE, e.g. 1e-5:1e-2:log")]
        ) from None
    if scale not in SCALES:
        raise ConfigError([ConfigIssue(key, raw, f"scale must be one of {', '.join(SCALES)}")])
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError([ConfigIssue(key, raw, "needs finite LO <= HI")])
    if scale in ("int", "logint") and math.ceil(low) > math.floor(high):
        raise ConfigError([ConfigIssue(key, raw, "an int range needs a whole number in it")])
    if scale in ("log", "logint") and low <= 0:
        raise ConfigError([ConfigIssue(key, raw, "a log range needs LO > 0")])
    return Axis(key, low=low, high=high, scale=scale)


def _draw(axis: Axis, rng: random.Random) -> str:
    if not axis.scale:
        return rng.choice(axis.values)
    if axis.scale in ("log", "logint"):
        value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high)))
    else:
        value = rng.uniform(axis.low, axis.high)
    if axis.scale in ("int", "logint"):
        return str(min(math.floor(axis.high), max(math.ceil(axis.low), round(value))))
    value = min(axis.high, max(axis.low, float(f"{value:.4g}")))  # readable, still in range
    return repr(value)


def points(grid: list[Axis], ranges: list[Axis], random_n: int = 0, seed: int = 0) -> list[Point]:
    """Grid: every combination of the grid values. Random: `random_n` draws, each axis
    (grid values as choices, ranges) sampled independently with `seed`."""
    keys = [a.key for a in (*grid, *ranges)]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError([ConfigIssue(dup[0], "", "swept twice; give each key once")])
    if ranges and not random_n:
        raise ConfigError([ConfigIssue("--range", ranges[0].key, "needs --random N")])
    if random_n:
        if not 1 <= random_n <= MAX_POINTS:
            raise ConfigError([ConfigIssue("--random", random_n, f"must be 1 to {MAX_POINTS}")])
        rng = random.Random(seed)
        combos = [[(a.key, _draw(a, rng)) for a in (*grid, *ranges)] for _ in range(random_n)]
    else:
        if not grid:
            raise ConfigError([ConfigIssue("--grid", "", "give at least one --grid or --random")])
        total = math.prod(len(a.values) for a in grid)
        if total > MAX_POINTS:
            raise ConfigError([ConfigIssue("--grid", total, f"more than {MAX_POINTS} points")])
        combos = [
            list(zip([a.key for a in grid], vals, strict=True))
            for vals in itertools.product(*(a.values for a in grid))
        ]
    return [Point(i, [f"{k}={v}" for k, v in c]) for i, c in enumerate(combos, start=1)]


def build(
    base: dict[str, Any],
    pts: list[Point],
    source: str,
    check: Callable[[RunConfig], None] | None = None,
) -> list[Point]:
    """Validate every point (structure, then `check`, e.g. launcher.validate). Raises one
    ConfigError naming field, value and the first sweep point each problem appears in."""
    issues: dict[str, ConfigIssue] = {}  # one line per distinct problem, at its first point

    def collect(p: Point, exc: ConfigError) -> None:
        where = f"sweep point {p.index} of {len(pts)}: {p.describe()}"
        for i in exc.issues:
            issues.setdefault(str(i), ConfigIssue(i.field, i.value, f"{i.reason} [{where}]"))

    for p in pts:  # structure first: cheap, and no torch import for a typo
        try:
            p.cfg = from_dict(apply_overrides(base, p.overrides), source)
        except ConfigError as exc:
            collect(p, exc)
    if not issues and check is not None:
        for p in pts:
            try:
                check(p.cfg)  # type: ignore[arg-type]  # set above for every point
            except ConfigError as exc:
                collect(p, exc)
    if issues:
        raise ConfigError(issues.values(), source)
    for p in pts:
        assert p.cfg is not None
        flat = flatten(p.cfg)
        p.params = {o.partition("=")[0]: flat[o.partition("=")[0]] for o in p.overrides}
    return pts


def check_group(name: str, store: RunStore) -> str:
    if not GROUP_RE.match(name) or ".." in name:
        raise ConfigError(
            [ConfigIssue("--name", name, "up to 60 letters, digits, '.', '-', '_' (no '..')")]
        )
    if group_file(store, name).exists():
        raise ConfigError([ConfigIssue("--name", name, "a sweep of that name exists")])
    return name


def default_group() -> str:
    return time.strftime("sweep-%Y%m%d-%H%M%S")


def group_file(store: RunStore, group: str) -> Any:
    if not GROUP_RE.match(group) or ".." in group:
        raise ConfigError([ConfigIssue("group", group, "not a sweep name")])
    return store.root / SWEEPS_DIR / f"{group}.json"


def prepare(group: str, pts: list[Point]) -> list[tuple[RunConfig, str]]:
    """(config, run name) per point: tagged `sweep:<group>`, named <group>-<n>."""
    width = len(str(len(pts)))
    out = []
    for p in pts:
        assert p.cfg is not None
        cfg = p.cfg.model_copy(deep=True)
        cfg.run.tags = sorted({*cfg.run.tags, TAG_PREFIX + group})
        out.append((cfg, f"{group}-{p.index:0{width}d}"))
    return out


def record(store: RunStore, group: str, keys: list[str], runs: list[tuple[RunInfo, Point]]) -> None:
    make_dir(store.root / SWEEPS_DIR)
    atomic_write_json(
        group_file(store, group),
        {
            "name": group,
            "created": time.time(),
            "keys": keys,
            "runs": [{"id": i.id, "index": p.index, "params": p.params} for i, p in runs],
        },
    )


# -- comparing a group ---------------------------------------------------------------------------
def metrics_of(runs: list[RunInfo]) -> tuple[str, ...]:
    """What a group can be sorted by: the val metrics its runs' kinds report, then their test
    metrics, from each run's metric spec."""
    val: dict[str, None] = {}
    test: dict[str, None] = {}
    for r in runs:
        if r.meta is not None:
            spec = metric_spec_of_run(r.meta)
            val.update(dict.fromkeys(m.name for m in spec.val))
            test.update(dict.fromkeys(m.name for m in spec.test))
    return (*val, *test)


def _spec_of(runs: list[RunInfo]) -> MetricSpec | None:
    return next((metric_spec_of_run(r.meta) for r in runs if r.meta is not None), None)


def groups(runs: list[RunInfo]) -> list[str]:
    return sorted(
        {t[len(TAG_PREFIX) :] for r in runs for t in r.label.tags if t.startswith(TAG_PREFIX)}
    )


def group_of(info: RunInfo) -> str:
    return next((t[len(TAG_PREFIX) :] for t in info.label.tags if t.startswith(TAG_PREFIX)), "")


@dataclass
class GroupRow:
    info: RunInfo
    params: dict[str, Any]
    value: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.info.id,
            "name": self.info.name,
            "status": self.info.status,
            "params": self.params,
            "value": self.value,
        }


@dataclass
class GroupTable:
    group: str
    keys: list[str]
    metric: str
    rows: list[GroupRow]  # best first; runs without the metric last
    higher: bool = True  # which way `metric` is better (the runs' metric spec)
    metrics: tuple[str, ...] = ()  # what the group can be sorted by

    @property
    def best(self) -> GroupRow | None:
        return self.rows[0] if self.rows and self.rows[0].value is not None else None

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "group": self.group,
            "keys": self.keys,
            "metric": self.metric,
            "higher_is_better": self.higher,
            "runs": [r.to_json() for r in self.rows],
            "best": best.to_json() if best else None,
        }


def _recorded(store: RunStore, group: str) -> dict[str, Any]:
    try:
        data = read_json(group_file(store, group))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _swept_keys(recorded: dict[str, Any], configs: dict[str, dict[str, Any]]) -> list[str]:
    """The sweep's keys as recorded, else the config keys whose values differ."""
    keys = [str(k) for k in recorded.get("keys", [])]
    if keys:
        return keys
    all_keys = sorted({k for c in configs.values() for k in c} - {"run.name", "run.tags"})
    return [k for k in all_keys if len({repr(c.get(k)) for c in configs.values()}) > 1]


def _params(
    run_id: str, keys: list[str], config: dict[str, Any], recorded: dict[str, Any]
) -> dict[str, Any]:
    """A run's swept values: from its config, else from the sweep's record of the run (a
    script sweep's `{lr}` may fill `--learning_rate={lr}`, which the config knows by that
    name)."""
    runs = recorded.get("runs", [])
    mine: dict[str, Any] = next(
        (r.get("params", {}) for r in runs if isinstance(r, dict) and r.get("id") == run_id), {}
    )
    return {k: config[k] if config.get(k) is not None else mine.get(k) for k in keys}


def _rankable(runs: list[RunInfo]) -> tuple[str, ...]:
    """What a group can be ranked by: its curves, and the train loss of script runs ranked by
    it (no curve of their spec's val list)."""
    ranked = [
        str(r.meta.metrics["best"])
        for r in runs
        if r.meta and r.meta.metrics.get("best") == "loss" and r.meta.last_loss is not None
    ]
    curves = metrics_of(runs)
    return (*curves, *(n for n in dict.fromkeys(ranked) if n not in curves))


def _pick_metric(runs: list[RunInfo], metric: str, group: str) -> tuple[str, tuple[str, ...]]:
    """The metric to sort by: `--metric` if the runs report it (else exit 2 naming it), else
    the one the runs' metric spec ranks them by; "" while no run reports any."""
    specs = [metric_spec_of_run(r.meta) for r in runs if r.meta is not None]
    allowed = _rankable(runs)
    if metric and metric not in allowed:
        raise ConfigError(
            [
                ConfigIssue(
                    "--metric",
                    metric,
                    f"the runs of sweep {group} report {', '.join(allowed) or 'no metrics yet'}",
                )
            ]
        )
    if not metric:
        metric = next((s.best for s in specs if s.best in allowed), "")
        metric = metric or next(iter(allowed), "")
    return metric, allowed


def group_table(
    store: RunStore, group: str, metric: str = "", runs: list[RunInfo] | None = None
) -> GroupTable:
    """The group's runs sorted by `metric` (default: the one their metric spec ranks them
    by), with the swept keys as columns (from the sweep's record, else the config keys that
    differ). With no metric reported yet, the rows come unsorted and `best` is None."""
    runs = [r for r in (runs if runs is not None else store.list()) if group_of(r) == group]
    if not runs:
        raise ConfigError([ConfigIssue("group", group, "no runs carry the tag sweep:" + group)])
    configs = flat_configs(store, runs)
    recorded = _recorded(store, group)
    keys = _swept_keys(recorded, configs)
    metric, allowed = _pick_metric(runs, metric, group)
    spec = _spec_of(runs)
    higher = spec.metric(metric).higher if spec is not None and metric else True
    rows = [
        GroupRow(
            r,
            _params(r.id, keys, configs[r.id], recorded),
            metric_value(r, metric) if metric else None,
        )
        for r in runs
    ]
    sign = -1.0 if higher else 1.0
    rows.sort(key=lambda row: (row.value is None, sign * (row.value or 0.0), row.info.id))
    return GroupTable(group, keys, metric, rows, higher, allowed)
