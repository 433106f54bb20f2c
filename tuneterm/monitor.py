"""System samples: GPUs through NVML when present, CPU and RAM through psutil.

Without NVML (no driver, no GPU) `gpu_samples()` returns [] and says why in `nvml_status()`;
it never raises. Used by the engine (events) and the TUI (live pane).
"""

from __future__ import annotations

import threading
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


_NVML = _Nvml()


def gpu_samples(indices: list[int] | None = None) -> list[GpuSample]:
    return _NVML.samples(indices)


def nvml_status() -> str:
    """'' when NVML works, else a plain sentence saying why there are no GPU figures."""
    return "" if _NVML.ready() else _NVML.reason


def process_sample(proc: psutil.Process) -> dict[str, float]:
    """CPU (percent of one core, since the last call) and RSS of one process and its children."""
    cpu = proc.cpu_percent(None)
    rss = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            cpu += child.cpu_percent(None)
            rss += child.memory_info().rss
        except psutil.Error:
            continue
    return {"cpu": cpu, "rss": float(rss)}


def system_sample() -> dict[str, float]:
    vm = psutil.virtual_memory()
    return {
        "sys_cpu": psutil.cpu_percent(None),
        "ram_used": float(vm.used),
        "ram_total": float(vm.total),
    }
