"""A timm or Hugging Face model reads image files its own way (interpolation, centre crop from
its pretrained config) in training, in the cached splits and in predict; torchvision runs keep
squashing to S x S."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tuneterm.config import ModelSection
from tuneterm.engine.kinds.classify.data import decode
from tuneterm.engine.kinds.classify.resize import SQUASH, Resize


def wide_image(path: Path) -> Path:
    """64 x 32: a red left quarter, a green middle, a blue right quarter."""
    arr = np.zeros((32, 64, 3), dtype=np.uint8)
    arr[:, :16, 0] = 255
    arr[:, 16:48, 1] = 255
    arr[:, 48:, 2] = 255
    Image.fromarray(arr).save(path)
    return path


def test_a_model_resize_keeps_the_centre_and_squash_keeps_everything(tmp_path: Path) -> None:
    path = wide_image(tmp_path / "wide.png")
    squashed = decode(path, 16)  # the whole width in 16 px: red, green and blue all there
    assert squashed[0, :, 0].float().mean() > 200 and squashed[2, :, -1].float().mean() > 200
    cropped = decode(path, 16, Resize("bicubic", 0.875))  # short side 18, centre 16 x 16
    assert cropped.shape == (3, 16, 16)
    assert cropped[1].float().mean() > 240  # only the green middle is left
    assert cropped[0].float().mean() < 10 and cropped[2].float().mean() < 10


def test_resize_of_reads_the_models_pretrained_config() -> None:
    pytest.importorskip("timm")
    from timm.models import get_pretrained_cfg

    from tuneterm.engine.kinds.classify.sources import resize_of

    pc = get_pretrained_cfg("resnet10t")
    got = resize_of(ModelSection(name="timm/resnet10t", weights="none"))
    assert got == Resize(pc.interpolation, pc.crop_pct) and got.crop_pct < 1
    assert resize_of(ModelSection(name="resnet18", weights="none")) == SQUASH


def test_training_splits_and_predict_read_files_the_same_way(tmp_path: Path) -> None:
    pytest.importorskip("timm")
    from tuneterm.config import loads
    from tuneterm.engine.kinds.classify.data import build
    from tuneterm.engine.kinds.classify.sources import resize_of

    root = tmp_path / "data"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            wide_image(root / cls / f"{i}.png")
    cfg = loads(
        f'[model]\nname = "timm/resnet10t"\nweights = "none"\n'
        f'[data]\ndataset = "folder"\nroot = "{root}"\nimage_size = 16\ncache_gb = 0\n'
    )
    resize = resize_of(cfg.model)
    data = build(cfg.data, 0, resize)
    assert data.train.resize == resize and data.train.subset(torch.tensor([0])).resize == resize
    # predict reads with the Resize the checkpoint records: the built model's `preprocess`
    from tuneterm.engine.kinds.classify.models import build_model

    built = build_model(cfg.model, 2, None, cfg.head, data.classes, 16)
    assert Resize.of(built.preprocess) == resize
    assert data.train.files is not None
    x = decode(data.train.files[0], 16, Resize.of(built.preprocess))
    assert x[1].float().mean() > 240  # the model's centre crop, not the squash
