"""The `[detect]` table of a run config: read it with `DetectSection.of(cfg)`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tuneterm.config.choices import EmptyImages
from tuneterm.config.section import KindSection


class DetectSection(KindSection):
    """[detect]: the detector's options, and the embedded detection data."""

    table: ClassVar[str] = "detect"

    trainable_backbone_layers: int = Field(
        -1,
        ge=-1,
        le=6,
        description="Backbone stages trained, from the top; -1 = the model's default",
    )
    min_size: int = Field(
        0,
        ge=0,
        le=4096,
        description="Images are resized so the short side is this; 0 = model default",
    )
    max_size: int = Field(
        0, ge=0, le=8192, description="... and the long side at most this; 0 = model default"
    )
    canvas: int = Field(128, ge=32, le=1024, description="Embedded data: canvas size in pixels")
    images: int = Field(600, ge=10, le=100_000, description="Embedded data: canvases generated")
    max_objects: int = Field(
        3, ge=1, le=20, description="Embedded data: at most this many per canvas"
    )
    empty_images: EmptyImages = Field(
        "error",
        description='Images without annotations: "error" (refuse the data) or "keep" '
        "(train on them as negatives)",
    )
    score_threshold: float = Field(
        0.3, ge=0.0, le=1.0, description="predict: drop boxes scoring below this"
    )
    detections: int = Field(100, ge=1, le=1000, description="At most this many boxes per image")
