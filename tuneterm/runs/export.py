"""`tuneterm export-model`: a run's best checkpoint as one deployable file.

- TorchScript (`torch.jit.script`): class names and preprocessing in the file's extra file
  `tuneterm.json` (`torch.jit.load(path, _extra_files={"tuneterm.json": ""})`).
- ONNX (`torch.onnx.export`, the TorchScript-based exporter, opset 17): the same JSON in the
  model's `metadata_props` under the key `tuneterm`; runs with onnxruntime.

What the file takes and returns is the kind's own: its `TaskSpec.exporter` names a function
("module:function", e.g. tuneterm/engine/kinds/classify/export.py) that wraps the run's
best.pt as an `engine.exportable.Wrapped` and says so in the metadata (`input`, `outputs`).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm import tasks
from tuneterm.config import run_config
from tuneterm.runs.predict import PredictError, best_checkpoint
from tuneterm.store.runs import RunStore

if TYPE_CHECKING:
    from tuneterm.engine.exportable import Wrapped

FORMATS = ("torchscript", "onnx")
SUFFIX = {"torchscript": ".pt", "onnx": ".onnx"}
METADATA_KEY = "tuneterm"  # ONNX metadata_props key; TorchScript extra file tuneterm.json
OPSET = 17


@dataclass
class Exported:
    path: Path
    format: str
    metadata: dict[str, Any]


def export_model(store: RunStore, run_id: str, fmt: str, out: Path | None = None) -> Exported:
    if fmt not in FORMATS:
        raise PredictError(f"--format = {fmt!r}: must be one of {', '.join(FORMATS)}")
    task = tasks.model_kind(run_config(store, run_id))  # a soup's model is its parents' kind
    spec = tasks.get(task)
    if not spec.exporter:
        raise PredictError(f"{task} runs cannot be exported")
    best = best_checkpoint(store, run_id)
    path = out or store.run_dir(run_id) / f"model{SUFFIX[fmt]}"
    if path.is_dir():
        raise PredictError(f"--out {path}: is a folder; give a file name")
    module_name, _, func = spec.exporter.partition(":")
    wrapped: Wrapped = getattr(importlib.import_module(module_name), func)(best)
    wrapped.meta["run"] = run_id
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "torchscript":
            _torchscript(wrapped, tmp)
        else:
            _onnx(wrapped, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(path, fmt, wrapped.meta)


def _torchscript(wrapped: Wrapped, path: Path) -> None:
    """Scripted when the model allows it (control flow kept); else traced on the example input
    (Hugging Face models and LoRA adapters use Python that TorchScript cannot compile)."""
    import torch

    try:
        module = torch.jit.script(wrapped.module)
    except Exception:
        with torch.no_grad():
            module = torch.jit.trace(wrapped.module, wrapped.example, strict=False)
    extra = {"tuneterm.json": json.dumps(wrapped.meta)}
    torch.jit.save(module, str(path), _extra_files=extra)


def _onnx(wrapped: Wrapped, path: Path) -> None:
    import warnings

    import onnx
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python code
        torch.onnx.export(
            wrapped.module,
            (wrapped.example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=wrapped.outputs,
            dynamic_axes=wrapped.axes,
        )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(wrapped.meta)
    onnx.save(proto, str(path))


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata an exported file carries (either format)."""
    if path.suffix == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        for entry in proto.metadata_props:
            if entry.key == METADATA_KEY:
                return dict(json.loads(entry.value))
        raise PredictError(f"{path}: no {METADATA_KEY} metadata")
    import torch

    extra = {"tuneterm.json": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return dict(json.loads(extra["tuneterm.json"]))
