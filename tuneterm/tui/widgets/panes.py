"""What the System and Speed panes show, as Rich renderables: GPU/CPU/RAM, throughput."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tuneterm.monitor import GpuSample
from tuneterm.store import RunInfo
from tuneterm.store.meta import INPUT_BOUND
from tuneterm.tui.history import RunHistory
from tuneterm.tui.metrics import view_of
from tuneterm.tui.rows import number


def size(n: float | None) -> str:
    if n is None or n != n:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def gpu_table(samples: Sequence[GpuSample | Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, expand=False, header_style="bold")
    for col in ("GPU", "name", "util", "memory", "temp", "power"):
        table.add_column(col, justify="right" if col not in ("GPU", "name") else "left")
    for s in samples:
        g = s.to_dict() if isinstance(s, GpuSample) else dict(s)
        power = g.get("power", math.nan)
        table.add_row(
            str(g.get("index", "?")),
            str(g.get("name", ""))[:28],
            f"{g.get('util', 0):.0f}%",
            f"{size(g.get('mem_used'))} / {size(g.get('mem_total'))}",
            f"{g.get('temp', 0):.0f}°C",
            "-" if power != power else f"{power:.0f} W",
        )
    return table


def system_view(
    info: RunInfo | None,
    history: RunHistory | None,
    gpus: Sequence[GpuSample],
    nvml_problem: str,
    now: float | None = None,
) -> RenderableType:
    """GPU figures from NVML on this machine (or why there are none) and the run's CPU/RAM."""
    now = now or time.time()
    parts: list[RenderableType] = [Text("GPUs", style="bold")]
    sys = history.sys if history else {}
    if gpus:
        parts.append(gpu_table(gpus))
    elif nvml_problem:
        parts.append(Text(f"No GPU figures: {nvml_problem}.", style="yellow"))
        if sys.get("gpus"):
            parts.append(Text("The run reported these GPUs in its last sample:", style="dim"))
            parts.append(gpu_table(sys["gpus"]))
    else:
        parts.append(Text("NVML works but reports no GPUs.", style="yellow"))
    parts += ranks_view(info)
    parts.append(Text(""))
    parts.append(Text(f"Run process ({view_of(info).process})", style="bold"))
    if not sys:
        alive = info is not None and info.alive
        parts.append(
            Text("no sample yet" if alive else "no samples: the run is not running", style="dim")
        )
    else:
        age = now - float(sys.get("t", now))
        when = f"sampled {age:.0f} s ago" if info and info.alive else "last sample of the run"
        parts.append(
            Text(
                f"CPU {sys.get('cpu', 0):.0f}% of one core   RSS {size(sys.get('rss'))}   ({when})"
            )
        )
        if sys.get("gpu_mem_tree"):  # a script run: what NVML says its processes hold
            parts.append(Text(f"GPU memory of its processes {size(sys.get('gpu_mem_tree'))}"))
        parts.append(
            Text(
                f"System: CPU {sys.get('sys_cpu', 0):.0f}%   RAM {size(sys.get('ram_used'))}"
                f" / {size(sys.get('ram_total'))}"
            )
        )
    return Group(*parts)


def ranks_view(info: RunInfo | None) -> list[RenderableType]:
    """A distributed run's ranks: where each one trains (meta.json `devices`)."""
    meta = info.meta if info else None
    if meta is None or meta.world_size <= 1:
        return []
    hosts = {str(d.get("host", "")) for d in meta.devices}
    out: list[RenderableType] = [
        Text(""),
        Text(f"Ranks: world size {meta.world_size} (DDP)", style="bold"),
    ]
    for d in meta.devices:
        where = f" on {d.get('host')}" if len(hosts) > 1 else ""
        out.append(Text(f"  rank {d.get('rank')}: {d.get('device')}{where}  pid {d.get('pid')}"))
    return out


def speed_summary(history: RunHistory | None, unit: str = "img/s") -> Text:
    """Throughput (in the run's `unit`), data wait and peak GPU memory, from the train events."""
    if history is None or not len(history.train):
        return Text("no training steps yet", style="dim")
    speed = history.train.np("examples_s")
    wait = history.train.np("data_wait")
    mem = history.train.np("gpu_mem")
    last_wait = float(wait[-1]) if len(wait) else math.nan
    text = Text()
    text.append(f"{number(float(speed[-1]))} {unit}", style="bold")
    text.append(f"  (mean {number(float(speed[~(speed != speed)].mean()))})   ")
    text.append(f"data wait {last_wait * 100:.0f}%")
    if last_wait == last_wait and last_wait >= INPUT_BOUND:
        text.append(
            f"\ninput-bound: {last_wait:.0%} of step time waiting for data: raise data.workers, "
            "keep images in RAM (data.cache_gb) or use a lighter data.augment",
            style="bold yellow",
        )
    peak = mem[~(mem != mem)]
    if len(peak):
        text.append(f"   GPU mem peak {size(float(peak.max()))}")
    return text
