"""Every choice list a config field takes, written once.

The schema's types and descriptions, the checks and the TUI editor read them from here; the
kinds of run and their data sets come from the task registry (`config.kindrules.choices`),
model names from the model catalog (`tuneterm.config.catalog`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Literal, get_args

from tuneterm.errors import ConfigIssue

# Plain strings checked against a tuple (registries that may grow).
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "step", "onecycle", "anneal")
AUGMENTS = ("none", "light", "randaugment", "trivialaugment", "autoaugment")
RDZV_BACKENDS = ("c10d", "static", "etcd", "etcd-v2")
DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # cuda:N: any device index
MODEL_SOURCES = ("torchvision", "timm", "hf")  # tuneterm.config.sources describes each

# Closed sets: Literal types, so pydantic checks them and the editor offers them.
Shift = Literal["none", "invert", "rot90", "rot180", "contrast", "colour", "texture"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
HeadKind = Literal["linear", "mlp"]
Activation = Literal["relu", "gelu", "silu", "tanh"]
FreezeStrategy = Literal["none", "linear_probe", "first_n", "gradual"]
Mode = Literal["min", "max"]
AdaptMethod = Literal["none", "adabn", "dann", "cdan", "coral", "mmd"]
# The methods that align features while training (the others act after it, or not at all).
FEATURE_ADAPT = ("dann", "cdan", "coral", "mmd")
DistBackend = Literal["auto", "nccl", "gloo"]
CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
OnOff = Literal["auto", "on", "off"]
EmptyImages = Literal["error", "keep"]
Padding = Literal["dynamic", "max_length"]
OnNan = Literal["stop", "skip", "ignore"]
StopSignal = Literal["SIGTERM", "SIGINT"]


def values(choice: Any) -> tuple[str, ...]:
    """The values of a choice list: a tuple as is, a Literal type's arguments."""
    return tuple(get_args(choice)) if not isinstance(choice, tuple) else choice


def one_of(choice: Any, quote: bool = True) -> str:
    """`"a", "b" or "c"`: a choice list as help texts write it."""
    shown = [f'"{v}"' if quote else str(v) for v in values(choice)]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


# Config keys checked against a tuple here (the Literal fields pydantic checks itself).
STATIC: dict[str, tuple[str, ...]] = {
    "model.source": MODEL_SOURCES,
    "data.augment": AUGMENTS,
    "train.optimizer": OPTIMIZERS,
    "train.scheduler": SCHEDULERS,
    "dist.rdzv_backend": RDZV_BACKENDS,
}


def check_choice(field: str, value: str, allowed: Iterable[str], what: str) -> ConfigIssue | None:
    """None when `value` is allowed; else an issue with the close match or the list."""
    allowed = list(allowed)
    if value in allowed:
        return None
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
    return ConfigIssue(field, value, f"unknown {what}; {hint}")
