"""Images from a Hugging Face data set (`data.dataset = "hf"`), decoded once into RAM.

The data set is opened as the launch checks opened it (`tuneterm.config.hfdata`); its train
split, and its validation and test splits when it has them, become in-memory `Split`s of
(3, S, S) uint8 images, so reduction, splitting and batches work as for folders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tuneterm.config import DataSection
from tuneterm.config.hfdata import HFDataError, image_problem, labels_of, open_splits
from tuneterm.engine.data import DataError
from tuneterm.engine.kinds.classify.data import Split


def _images(ds: Any, column: str, size: int) -> torch.Tensor:
    from PIL import Image

    out = torch.empty(len(ds), 3, size, size, dtype=torch.uint8)
    for i, img in enumerate(ds[column]):
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        out[i] = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)
    return out


def load(d: DataSection, size: int) -> tuple[Split, dict[str, Split], list[str]]:
    """(the train split, {"val": ..., "test": ...} when the data set has them, class names)."""
    try:
        splits = open_splits(d.root, d.split, d.label_column)
        out: dict[str, Split] = {}
        for role, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
            if ds is None:
                continue
            problem = image_problem(ds, d.image_column)
            if problem:
                raise HFDataError("data.image_column", d.image_column, problem)
            labels = torch.tensor(labels_of(ds, d.label_column, splits.classes), dtype=torch.long)
            out[role] = Split(labels, _images(ds, d.image_column, size))
    except HFDataError as exc:
        raise DataError(str(exc.issue)) from None
    return out.pop("train"), out, splits.classes
