"""Things users pick by name, and the checks that need torchvision to make.

`validate(cfg, store)` runs before a run is created: it rejects unknown models and weights, and
data the scan in `datacheck.py` finds unusable, with the same `ConfigError` that schema
validation raises, so nothing half-made is left.
"""

from __future__ import annotations

import difflib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig

if TYPE_CHECKING:
    from tuneterm.store.runs import RunStore

WEIGHTS_HOST = "download.pytorch.org"


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


@dataclass(frozen=True)
class WeightsFile:
    """Where torchvision's weights API keeps one pretrained file."""

    enum_name: str
    url: str
    path: Path

    @property
    def cached(self) -> bool:
        return self.path.is_file()

    def missing_message(self) -> str:
        return (
            f"pretrained weights {self.enum_name} are not cached and cannot be downloaded here. "
            f"Download {self.url} and place it at {self.path} "
            '(or set model.weights = "none" to start from random weights)'
        )


def resolve_weights(model: str, weights: str) -> Any | None:
    """The torchvision weights enum member for `model.weights`, or None for random init."""
    if weights.lower() == "none":
        return None
    import torchvision

    enum = torchvision.models.get_model_weights(model)
    try:
        return enum[weights]
    except KeyError:
        allowed = ["DEFAULT", "none", *[w.name for w in enum]]
        close = difflib.get_close_matches(weights, allowed, n=1)
        hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
        raise ConfigError(
            [ConfigIssue("model.weights", weights, f"unknown weights; {hint}")]
        ) from None


def weights_file(member: Any) -> WeightsFile:
    import torch.hub

    name = Path(member.url).name
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return WeightsFile(f"{type(member).__name__}.{member.name}", member.url, path)


def _reachable(host: str, timeout: float = 3.0) -> bool:
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


def check_input_size(model: str, size: int) -> ConfigIssue | None:
    """Run the model on the `meta` device (no memory, no compute) to catch sizes it cannot take,
    e.g. ViTs that need 224 px or small-input failures deep in a network."""
    import torch
    import torchvision

    try:
        with torch.device("meta"):
            net = torchvision.models.get_model(model, weights=None, num_classes=2).eval()
            net(torch.empty(2, 3, size, size))
    except Exception as exc:  # any shape error; the message names what the model expected
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return ConfigIssue(
            "data.image_size", size, f"{model} cannot take {size}x{size} images ({first})"
        )
    return None


def device_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """train.device names CUDA on a machine without it (every task kind checks this)."""
    if cfg.train.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return [
                ConfigIssue(
                    "train.device",
                    cfg.train.device,
                    'CUDA is not available here; use "auto" or "cpu"',
                )
            ]
    return []


def validate(cfg: RunConfig, store: RunStore | None = None) -> None:
    """Checks that need torchvision or the store; raises ConfigError naming each field."""
    issues: list[ConfigIssue] = []
    models = classification_models()
    if cfg.model.name not in models:
        close = difflib.get_close_matches(cfg.model.name, models, n=1)
        hint = f"did you mean {close[0]}?" if close else "run `tuneterm models` to list them"
        issues.append(ConfigIssue("model.name", cfg.model.name, f"unknown model; {hint}"))
    else:
        try:
            member = resolve_weights(cfg.model.name, cfg.model.weights)
        except ConfigError as exc:
            issues.extend(exc.issues)
            member = None
        if member is not None and not cfg.model.init:
            wf = weights_file(member)
            if not wf.cached and not _reachable(WEIGHTS_HOST):
                issues.append(ConfigIssue("model.weights", cfg.model.weights, wf.missing_message()))
        shape_issue = check_input_size(cfg.model.name, cfg.data.image_size)
        if shape_issue:
            issues.append(shape_issue)
    init = cfg.model.init
    if init.startswith("run:"):
        if store is None:
            issues.append(ConfigIssue("model.init", init, "needs a runs folder to look in"))
        else:
            try:
                ref = store.resolve(init[4:])
                best = store.checkpoint_dir(ref) / "best.pt"
                if not best.is_file():
                    issues.append(ConfigIssue("model.init", init, f"run {ref} has no {best.name}"))
            except LookupError as exc:
                issues.append(ConfigIssue("model.init", init, str(exc)))
    elif init and not Path(init).expanduser().is_file():
        issues.append(ConfigIssue("model.init", init, "no such checkpoint file"))
    from tuneterm.engine.datacheck import check as check_data

    issues.extend(check_data(cfg))
    issues.extend(device_issues(cfg))
    if issues:
        raise ConfigError(issues)


def resolve_init(cfg: RunConfig, store: RunStore) -> Path | None:
    init = cfg.model.init
    if not init:
        return None
    if init.startswith("run:"):
        return store.checkpoint_dir(store.resolve(init[4:])) / "best.pt"
    return Path(init).expanduser()
