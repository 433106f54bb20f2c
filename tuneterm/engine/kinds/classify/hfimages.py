"""Images from a Hugging Face data set (`data.dataset = "hf"`), decoded once into RAM.

The data set is opened as the launch checks opened it (`tuneterm.config.hfdata`); its train
split, and its validation and test splits when it has them, become (3, S, S) uint8 images in
RAM, which data.py makes into splits, so reduction, splitting and batches work as for folders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tuneterm.config import DataSection
from tuneterm.config.hfdata import HFDataError, image_problem, labels_of, open_splits
from tuneterm.engine.data import DataError
from tuneterm.engine.kinds.classify.resize import SQUASH, Resize


def _images(ds: Any, column: str, size: int, resize: Resize) -> torch.Tensor:
    out = torch.empty(len(ds), 3, size, size, dtype=torch.uint8)
    for i, img in enumerate(ds[column]):
        rgb = resize.apply(img.convert("RGB"), size)
        out[i] = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)
    return out


def load(
    d: DataSection, size: int, resize: Resize = SQUASH
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """({"train": (labels, images), "val": ..., "test": ...}: val and test when the data set
    has them; the class names)."""
    try:
        splits = open_splits(d.root, d.split, d.label_column)
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for role, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
            if ds is None:
                continue
            problem = image_problem(ds, d.image_column)
            if problem:
                raise HFDataError("data.image_column", d.image_column, problem)
            labels = torch.tensor(labels_of(ds, d.label_column, splits.classes), dtype=torch.long)
            out[role] = labels, _images(ds, d.image_column, size, resize)
    except HFDataError as exc:
        raise DataError(str(exc.issue)) from None
    return out, splits.classes
