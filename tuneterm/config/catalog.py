"""torchvision's model names and pretrained weights, without importing torch.

Built once by importing torchvision (seconds), then read from a JSON file keyed by the installed
torch and torchvision versions, under `$XDG_CACHE_HOME/tuneterm/` (default ~/.cache/tuneterm).
A missing, unreadable or stale file is rebuilt. The launch checks (`tuneterm.config.launch`) and
`tuneterm models` read it, so launching a run does not import torch in the CLI process.

Whether a model takes an image size is answered by running it on torch's `meta` device; the
answers are cached in a second file with the same key, one per (model, size) asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when the file's shape changes


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tuneterm"


def library_key() -> str:
    """The installed versions the catalog is valid for, as a file-name-safe string."""
    parts = []
    for dist in ("torch", "torchvision"):
        try:
            parts.append(f"{dist}-{version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}-none")
    return "_".join(parts).replace("+", "-").replace("/", "-") + f"_v{FORMAT}"


@dataclass(frozen=True)
class Weights:
    """One pretrained weights file of a model: `ResNet18_Weights.IMAGENET1K_V1`."""

    enum: str  # the enum class name, e.g. ResNet18_Weights
    name: str  # the member name, e.g. IMAGENET1K_V1
    url: str

    @property
    def label(self) -> str:
        return f"{self.enum}.{self.name}"

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str  # "classify" or "detect": the torchvision module it comes from
    weights: dict[str, Weights]  # member name -> weights
    default: str  # the member DEFAULT stands for; "" when the model has no weights

    def resolve(self, name: str) -> Weights | None:
        """The weights `model.weights = name` means; None for "none"; KeyError if unknown."""
        if name.lower() == "none":
            return None
        if name == "DEFAULT" and self.default:
            return self.weights[self.default]
        return self.weights[name]


def _build() -> dict[str, Any]:
    import torchvision

    models: dict[str, Any] = {}
    for kind, module in (
        ("classify", torchvision.models),
        ("detect", torchvision.models.detection),
    ):
        for name in sorted(torchvision.models.list_models(module=module)):
            try:
                enum = torchvision.models.get_model_weights(name)
            except (ValueError, KeyError):
                enum = None
            members = list(enum) if enum is not None else []
            default = enum["DEFAULT"].name if enum is not None and members else ""
            models[name] = {
                "kind": kind,
                "enum": enum.__name__ if enum is not None else "",
                "default": default,
                "weights": {m.name: m.url for m in members},
            }
    return {"key": library_key(), "models": models}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomic: concurrent launches may build the same file; each rename is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:  # a read-only cache folder: the catalog still works, rebuilt each time
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _read(path: Path, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


@cache
def _catalog() -> dict[str, Any]:
    key = library_key()
    path = cache_dir() / f"models-{key}.json"
    data = _read(path, key)
    if data is None or not isinstance(data.get("models"), dict):
        data = _build()
        _write(path, data)
    return data


def models(kind: str = "classify") -> list[str]:
    """torchvision's model names of one kind ("classify" or "detect"), sorted."""
    return sorted(n for n, m in _catalog()["models"].items() if m.get("kind") == kind)


def model(name: str) -> ModelInfo | None:
    m = _catalog()["models"].get(name)
    if m is None:
        return None
    enum = str(m.get("enum", ""))
    weights = {k: Weights(enum, k, str(url)) for k, url in dict(m.get("weights", {})).items()}
    return ModelInfo(name, str(m.get("kind", "")), weights, str(m.get("default", "")))


def input_size_problem(name: str, size: int) -> str | None:
    """Why classifier `name` cannot take `size` x `size` images, or None if it can. Asked of
    torch once per (model, size) and library versions; the answer is cached."""
    key = library_key()
    path = cache_dir() / f"input-sizes-{key}.json"
    known = _read(path, key) or {"key": key, "answers": {}}
    answers = known.setdefault("answers", {})
    ask = f"{name}@{size}"
    if ask in answers:
        return answers[ask]
    answers[ask] = answer = _probe(name, size)
    _write(path, known)
    return answer


def _probe(name: str, size: int) -> str | None:
    """Run the model on the `meta` device (no memory, no compute) to catch sizes it cannot take,
    e.g. ViTs that need 224 px, or small-input failures deep in a network."""
    import torch
    import torchvision

    try:
        with torch.device("meta"):
            net = torchvision.models.get_model(name, weights=None, num_classes=2).eval()
            net(torch.empty(2, 3, size, size))
    except Exception as exc:  # any shape error; the message names what the model expected
        text = str(exc).strip()
        return text.splitlines()[0][:160] if text else type(exc).__name__
    return None


def hub_dir() -> Path:
    """torch.hub.get_dir() without torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub,
    else ~/.cache/torch/hub (the same order torch.hub follows)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch"
    )
    return Path(home).expanduser() / "hub"


def weights_path(w: Weights) -> Path:
    """Where torchvision's weights API keeps (or will download) the file."""
    return hub_dir() / "checkpoints" / w.file_name
