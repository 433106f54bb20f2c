"""What a kind hands `tuneterm export-model` (runs/export.py): its module, an example
input, its metadata and its ONNX outputs. Each kind's `export.py` wraps its own model plus its
preprocessing with one plain tensor signature that TorchScript and ONNX can carry; the spec's
`exporter` names that function ("module:function", taking the run's best.pt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Wrapped:
    """What a kind exports: the module, an example input, its metadata, and its ONNX outputs
    with their dynamic axes (the input is always `image`)."""

    module: Any
    example: Any
    meta: dict[str, Any]
    outputs: list[str]
    axes: dict[str, dict[int, str]]
