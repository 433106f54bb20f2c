"""An in-process classify `Trainer` on a tiny model (resnet18 at 16 px, random init), with a
context (`Ctx`) that records the events it emits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuneterm.engine.kinds.classify.data import DataBundle, build
from tuneterm.engine.kinds.classify.models import build_model
from tuneterm.engine.kinds.classify.task import trainer
from tuneterm.engine.trainer import Trainer

BASE = """
[model]
name = "resnet18"
weights = "none"
[data]
dataset = "digits"
image_size = 16
per_class = 6
val_fraction = 0.1
test_fraction = 0.1
classes = ["0", "1", "2"]
[train]
epochs = 1
batch_size = 9
threads = 2
"""


class Ctx:
    def __init__(self, tmp: Path) -> None:
        self.ckpt_dir = tmp
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.events.append((kind, fields))

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return False


_DATA: dict[str, DataBundle] = {}


def config(extra: str = "") -> Any:
    """BASE with the sections of `extra` merged over it."""
    import tomllib

    from tuneterm.config import from_dict

    data = tomllib.loads(BASE)
    for section, values in tomllib.loads(extra).items():
        data[section] = {**data.get(section, {}), **values}
    return from_dict(data)


def make(tmp_path: Path, extra: str = "", init: Path | None = None) -> Trainer:
    cfg = config(extra)
    key = cfg.data.model_dump_json()
    if key not in _DATA:
        _DATA[key] = build(cfg.data, cfg.train.seed)
    torch.manual_seed(0)
    data = _DATA[key]
    built = build_model(cfg.model, len(data.classes), init, cfg.head)
    return trainer(cfg, built, data, Ctx(tmp_path), init)
