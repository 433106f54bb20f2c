"""The checks made before a run is created, without torch: models and weights (from the
catalog), checkpoints (read as zip and pickle structure, never unpickled), runs the config
names, and the device. Each returns the issues it finds; the launcher raises them together.
"""

from __future__ import annotations

import difflib
import os
import pickletools
import socket
import sys
import threading
import zipfile
from collections.abc import Collection
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from tuneterm.config import catalog
from tuneterm.config.schema import RunConfig
from tuneterm.config.tomlio import run_config
from tuneterm.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from tuneterm.store.runs import RunStore

WEIGHTS_HOST = "download.pytorch.org"


def reachable(host: str, timeout: float = 3.0) -> bool:
    """Can we open a TCP connection to `host` quickly? DNS runs in a thread so it cannot hang us.
    `TUNETERM_OFFLINE=1` says no without trying (air-gapped machines, tests)."""
    if os.environ.get("TUNETERM_OFFLINE", "") not in ("", "0"):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def missing_weights_message(label: str, url: str, path: Path) -> str:
    return (
        f"pretrained weights {label} are not cached and cannot be downloaded here. "
        f"Download {url} and place it at {path} "
        '(or set model.weights = "none" to start from random weights)'
    )


def model_issues(
    cfg: RunConfig, allowed: Collection[str], unknown: str, listing: str
) -> list[ConfigIssue]:
    """model.name among `allowed` (else `unknown`, with a close match or `listing`), then its
    weights: a known name, and cached or downloadable unless model.init replaces them."""
    name = cfg.model.name
    info = catalog.model(name) if name in allowed else None
    if info is None:
        close = difflib.get_close_matches(name, list(allowed), n=1)
        hint = f"did you mean {close[0]}?" if close else listing
        return [ConfigIssue("model.name", name, f"{unknown}; {hint}")]
    weights = cfg.model.weights
    try:
        member = info.resolve(weights)
    except KeyError:
        choices = ["DEFAULT", "none", *info.weights]
        close = difflib.get_close_matches(weights, choices, n=1)
        hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(choices)}"
        return [ConfigIssue("model.weights", weights, f"unknown weights; {hint}")]
    if member is None or cfg.model.init:
        return []
    if not catalog.weights_path(member).is_file() and not reachable(WEIGHTS_HOST):
        return [
            ConfigIssue(
                "model.weights",
                weights,
                missing_weights_message(member.label, member.url, catalog.weights_path(member)),
            )
        ]
    return []


def classifier_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """A torchvision classifier by name, its weights, and the image size it can take; timm
    and hf classifiers are checked by their source (tuneterm/config/sources.py)."""
    listing = "run `tuneterm models` to list them"
    issues = model_issues(cfg, catalog.models("classify"), "unknown model", listing)
    if any(i.field == "model.name" for i in issues):
        return issues
    size = cfg.data.image_size or 224  # 0: the model's own, 224 for torchvision's
    problem = catalog.input_size_problem(cfg.model.name, size)
    if problem:
        reason = f"{cfg.model.name} cannot take {size}x{size} images ({problem})"
        issues.append(ConfigIssue("data.image_size", size, reason))
    return issues


def checkpoint_problem(path: Path) -> str | None:
    """Why `path` is not a checkpoint torch.load can read as a dict, or None. Read without
    unpickling anything: torch.save writes a zip holding `<name>/data.pkl` (the structure) and
    the tensors beside it; the pickle's opcodes are parsed, not run."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if head == b"\x80\x02":  # torch's legacy (pre-1.6) format: a bare pickle stream
        return None
    if not zipfile.is_zipfile(path):
        return "not a checkpoint: not a file torch.save writes"
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if not pkl:
                return "a zip file but not a checkpoint: it has no data.pkl"
            ops = [op.name for op, _, _ in pickletools.genops(zf.read(pkl[0]))]
    except Exception as exc:  # a damaged zip or pickle: zipfile and pickletools raise many types
        return f"a damaged checkpoint ({type(exc).__name__}: {str(exc)[:120]})"
    first = next((op for op in ops if op not in ("PROTO", "FRAME")), "")
    if first not in ("EMPTY_DICT", "GLOBAL", "STACK_GLOBAL"):  # a dict or an OrderedDict
        return "not a checkpoint: it holds no dict of weights"
    return None


def _best_of(ref: str, field: str, cfg: RunConfig, store: RunStore | None) -> list[ConfigIssue]:
    """`run:<id>` names a run in the store with a best checkpoint, of this run's kind."""
    value = getattr(getattr(cfg, field.split(".")[0]), field.split(".")[1])
    if store is None:
        return [ConfigIssue(field, value, "needs a runs folder to look in")]
    try:
        run_id = store.resolve(ref)
    except LookupError as exc:
        return [ConfigIssue(field, value, f"{exc}; `tuneterm ls` lists the runs")]
    best = store.checkpoint_dir(run_id) / "best.pt"
    if not best.is_file():
        return [ConfigIssue(field, value, f"run {run_id} has no {best.name}")]
    try:
        kind = run_config(store, run_id).run.task
    except (ConfigError, OSError):  # its config no longer reads: the engine will say more
        return []
    if kind != cfg.run.task:
        reason = f"run {run_id} is a {kind} run; this is a {cfg.run.task} run"
        return [ConfigIssue(field, value, reason)]
    return []


def init_issues(cfg: RunConfig, store: RunStore | None) -> list[ConfigIssue]:
    """model.init: a run with a best checkpoint, or a checkpoint file."""
    init = cfg.model.init
    if not init:
        return []
    if init.startswith("run:"):
        return _best_of(init[4:], "model.init", cfg, store)
    path = Path(init).expanduser()
    if not path.is_file():
        return [ConfigIssue("model.init", init, "no such checkpoint file")]
    problem = checkpoint_problem(path)
    return [ConfigIssue("model.init", init, problem)] if problem else []


def teacher_issues(cfg: RunConfig, store: RunStore | None) -> list[ConfigIssue]:
    """distill.teacher: a run with a best checkpoint, a torchvision classifier, or a checkpoint
    file (the schema checked its form)."""
    t = cfg.distill.teacher
    if t.startswith("run:"):
        return _best_of(t[4:], "distill.teacher", cfg, store)
    if t.startswith("torchvision:"):
        name = t.split(":", 1)[1]
        known = catalog.models("classify")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean torchvision:{close[0]}?" if close else "see `tuneterm models`"
            return [ConfigIssue("distill.teacher", t, f"unknown model; {hint}")]
        return []
    if t.endswith(".pt") and Path(t).expanduser().is_file():
        problem = checkpoint_problem(Path(t).expanduser())
        return [ConfigIssue("distill.teacher", t, problem)] if problem else []
    return []


def no_cuda_reason() -> str | None:
    """Why CUDA surely is not available to torch here, or None when it may be. Decided without
    importing torch (seconds): a device mask that hides every device, a CPU-only torch build,
    or (on Linux) no NVIDIA or AMD (ROCm) kernel driver. When unsure, None: the engine then
    fails with torch's own message."""
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is not None and (not mask.strip() or mask.strip().startswith("-1")):
        return f"CUDA_VISIBLE_DEVICES = {mask!r} hides every device"
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return None
    if "+cpu" in torch_version:
        return f"torch {torch_version} is a CPU-only build"
    if sys.platform == "darwin":
        return "macOS has no CUDA"
    if sys.platform.startswith("linux"):
        nvidia = Path("/proc/driver/nvidia/gpus")
        gpus = nvidia.is_dir() and any(nvidia.iterdir())
        if (
            not gpus
            and not any(Path("/dev").glob("nvidia[0-9]*"))
            and not Path("/dev/kfd").exists()
        ):
            return "no NVIDIA or ROCm GPU driver is loaded"
    return None


def device_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """train.device names CUDA on a machine without it (every kind checks this)."""
    if not cfg.train.device.startswith("cuda"):
        return []
    why = no_cuda_reason()
    if why is None:
        return []
    return [
        ConfigIssue(
            "train.device",
            cfg.train.device,
            f'CUDA is not available here ({why}); use "auto" or "cpu"',
        )
    ]
