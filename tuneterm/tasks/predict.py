"""What `tuneterm predict` hands a kind's predictor: torch-free, below the engine and runs/.

A kind's engine module may provide `predict(best, inputs: PredictInput) -> list[dict]`
(tuneterm/engine/kinds/__init__.py); it raises `PredictError` for inputs it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class PredictError(ValueError):
    """Inputs or a run that cannot be predicted with; the message names which."""


@dataclass(frozen=True)
class PredictInput:
    images: list[Path] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    top_k: int = 5
    score_threshold: float | None = None  # None: the run's own default (detect.score_threshold)
