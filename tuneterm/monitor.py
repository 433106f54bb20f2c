"""System samples: GPUs through NVML when present, CPU and RAM through psutil.

Without NVML (no driver, no GPU) `gpu_samples()` returns [] and says why in `nvml_status()`;
it never raises. Used by the engine (events) and the TUI (live pane).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil


@dataclass
class GpuSample:
    index: int
    name: str
    util: float  # percent
    mem_used: int  # bytes
    mem_total: int
    temp: float  # Celsius
    power: float  # watts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Nvml:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: bool | None = None
        self.reason = ""
        self._nv: Any = None

    def ready(self) -> bool:
        with self._lock:
            if self._ready is None:
                try:
                    import pynvml

                    pynvml.nvmlInit()
                    self._nv = pynvml
                    self._ready = True
                except Exception as exc:  # no library, no driver, no GPU
                    self.reason = f"NVML unavailable: {exc}"
                    self._ready = False
            return self._ready

    def samples(self, indices: list[int] | None = None) -> list[GpuSample]:
        if not self.ready():
            return []
        nv = self._nv
        out = []
        try:
            count = nv.nvmlDeviceGetCount()
            for i in indices if indices is not None else range(count):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                util = nv.nvmlDeviceGetUtilizationRates(h)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                name = nv.nvmlDeviceGetName(h)
                try:
                    power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
                except Exception:
                    power = float("nan")
                out.append(
                    GpuSample(
                        index=i,
                        name=name.decode() if isinstance(name, bytes) else str(name),
                        util=float(util.gpu),
                        mem_used=int(mem.used),
                        mem_total=int(mem.total),
                        temp=float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                        power=power,
                    )
                )
        except Exception as exc:
            self.reason = f"NVML error: {exc}"
            return []
        return out

    def memory_of(self, pids: set[int]) -> int:
        """Bytes of GPU memory these processes hold, on every GPU; 0 without NVML."""
        if not self.ready():
            return 0
        nv = self._nv
        try:
            total = 0
            for i in range(nv.nvmlDeviceGetCount()):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                for p in nv.nvmlDeviceGetComputeRunningProcesses(h):
                    if p.pid in pids and p.usedGpuMemory:
                        total += int(p.usedGpuMemory)
            return total
        except Exception:  # a driver that answers one call and not the next: no figure
            return 0


_NVML = _Nvml()


def gpu_samples(indices: list[int] | None = None) -> list[GpuSample]:
    return _NVML.samples(indices)


def gpu_memory_of(pids: set[int]) -> int:
    """Bytes of GPU memory a run's processes hold (NVML's per-process figure); 0 without NVML."""
    return _NVML.memory_of(pids)


def nvml_status() -> str:
    """'' when NVML works, else a plain sentence saying why there are no GPU figures."""
    return "" if _NVML.ready() else _NVML.reason


class ProcessTree:
    """CPU and RSS of a process and all its descendants (a script's children, DataLoader
    workers), summed.

    psutil's `cpu_percent` compares two readings of one `Process` object, and `children()`
    makes new objects on every call, so their CPU always read 0 and only the root counted.
    The tree keeps each process's CPU seconds between samples instead; a process born since
    the last sample counts from its start."""

    def __init__(self, root: psutil.Process) -> None:
        self.root = root
        self._seconds: dict[tuple[int, float], float] = {}  # (pid, start) -> CPU s last time
        self._mono = time.monotonic()

    def sample(self) -> dict[str, float]:
        """{"cpu": percent of one core since the last call (0 on the first), "rss": bytes}."""
        now = time.monotonic()
        first = not self._seconds
        seen: dict[tuple[int, float], float] = {}
        used = 0.0
        rss = 0
        for proc in [self.root, *self._children()]:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    times = proc.cpu_times()
                    mem = proc.memory_info().rss
            except psutil.Error:
                continue  # ended between the listing and the reading
            seconds = times.user + times.system
            seen[key] = seconds
            rss += mem
            if key in self._seconds:
                used += max(0.0, seconds - self._seconds[key])
            elif not first:
                # Born since the last sample. (Not checked against the clock: psutil's start
                # times come from the boot time and drift from time.time() by a second.)
                used += seconds
        span = now - self._mono
        self._seconds, self._mono = seen, now
        cpu = 0.0 if first or span <= 0 else 100.0 * used / span
        return {"cpu": cpu, "rss": float(rss)}

    def _children(self) -> list[psutil.Process]:
        try:
            return self.root.children(recursive=True)
        except psutil.Error:
            return []


_TREES: dict[tuple[int, float], ProcessTree] = {}


def process_sample(proc: psutil.Process) -> dict[str, float]:
    """CPU (percent of one core, since the last call for this process) and RSS of a process
    and all its descendants; the first call for a process primes it and reads CPU 0."""
    key = (proc.pid, proc.create_time())
    tree = _TREES.get(key)
    if tree is None:
        tree = _TREES[key] = ProcessTree(proc)
    return tree.sample()


def system_sample() -> dict[str, float]:
    vm = psutil.virtual_memory()
    return {
        "sys_cpu": psutil.cpu_percent(None),
        "ram_used": float(vm.used),
        "ram_total": float(vm.total),
    }
