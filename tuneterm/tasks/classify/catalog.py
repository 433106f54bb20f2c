"""What model.name accepts for classify runs, for `tuneterm models --task classify`.

A module of its own, named by the spec's `catalog` and imported only when asked: building the
catalog the first time per torchvision version imports torchvision, which the kind's spec (read
by every tuneterm process) must not.
"""

from __future__ import annotations

from tuneterm.config import catalog


def models() -> dict[str, str]:
    """torchvision's classifiers (timm and Hugging Face names: `tuneterm models --source`)."""
    return dict.fromkeys(catalog.models("classify"), "")
