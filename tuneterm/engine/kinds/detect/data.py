"""Detection data: generated canvases with known boxes, COCO JSON and Pascal VOC XML.

Every source becomes a `DetSplit`: images (in RAM, or files decoded per batch) with their
boxes (xyxy pixels, float) and labels (1..K; 0 is the background the torchvision detectors
reserve). Annotation files are checked in full by `tuneterm.engine.kinds.detect.annotations`
before a run is created; the readers here assume they passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tuneterm.config import DataSection
from tuneterm.engine.data import DataError, sklearn_digits
from tuneterm.engine.kinds.detect import annotations as ann
from tuneterm.tasks.classify import SHAPES
from tuneterm.tasks.detect import DetectSection

Target = dict[str, torch.Tensor]


@dataclass
class DetSplit:
    boxes: list[torch.Tensor]  # (N, 4) float xyxy in pixels, per image
    labels: list[torch.Tensor]  # (N,) int64 in 1..K, per image
    images: list[torch.Tensor] | None = None  # (3, H, W) uint8, when held in RAM
    files: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    def subset(self, idx: list[int]) -> DetSplit:
        return DetSplit(
            [self.boxes[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.images[i] for i in idx] if self.images is not None else None,
            [self.files[i] for i in idx] if self.files is not None else None,
        )

    def image(self, i: int) -> torch.Tensor:
        if self.images is not None:
            return self.images[i]
        assert self.files is not None
        return read_image(self.files[i])


@dataclass
class DetData:
    classes: list[str]
    train: DetSplit
    val: DetSplit
    test: DetSplit
    counts: dict[str, int] = field(default_factory=dict)


def read_image(path: Path) -> torch.Tensor:
    """One image file as (3, H, W) uint8 at its own size (boxes are in its pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as src:
            arr = np.asarray(src.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"data: cannot read image {path}: {exc}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


# -- embedded: objects placed on canvases with known boxes -----------------------------------
def _shape_mask(shape: str, size: int) -> np.ndarray:
    """A boolean (size, size) mask of one shape filling its square."""
    r = size / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy, dx = yy - r, xx - r
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return np.ones((size, size), dtype=bool)
    if shape == "triangle":
        return abs(dx) <= (dy + r) * 0.5
    if shape == "cross":
        return (abs(dy) <= r / 3) | (abs(dx) <= r / 3)
    if shape == "ring":
        d2 = dy**2 + dx**2
        return (d2 <= r**2) & (d2 >= (r * 0.55) ** 2)
    return abs(dy) <= r / 3  # bar: a full-width horizontal bar


def _digit_glyphs() -> tuple[list[np.ndarray], list[int]]:
    images, target = sklearn_digits()
    return [img / 16.0 for img in images], [int(t) for t in target]


def _resize(glyph: np.ndarray, size: int) -> np.ndarray:
    t = torch.from_numpy(glyph.astype(np.float32))[None, None]
    out = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear")
    return out[0, 0].numpy()


def generate(kind: str, classes: list[str], det: DetectSection, seed: int) -> DetSplit:
    """`det.images` canvases of `det.canvas` px, each with 1..max_objects objects that overlap
    little, on a noisy background; boxes are the tight bounds of what was drawn."""
    rng = np.random.default_rng(seed)
    s = det.canvas
    glyphs: dict[int, list[np.ndarray]] = {}
    if kind == "digits-boxes":
        imgs, targets = _digit_glyphs()
        for img, t in zip(imgs, targets, strict=True):
            glyphs.setdefault(t, []).append(img)
        names = [str(i) for i in range(10)]
    else:
        names = list(SHAPES)
    use = [names.index(c) for c in classes]
    images, boxes, labels = [], [], []
    for _ in range(det.images):
        bg = rng.uniform(0, 110, size=3)
        canvas = bg[:, None, None] + rng.normal(0, 10, size=(3, s, s))
        placed: list[tuple[float, float, float, float]] = []
        found_labels: list[int] = []
        for _ in range(int(rng.integers(1, det.max_objects + 1))):
            for _try in range(20):
                size = int(rng.uniform(0.18, 0.38) * s)
                x0, y0 = (int(v) for v in rng.integers(0, s - size + 1, size=2))
                box = (x0, y0, x0 + size, y0 + size)
                if all(_iou(box, b) < 0.05 for b in placed):
                    break
            else:
                continue
            k = int(rng.integers(len(use)))
            cls = use[k]
            if kind == "digits-boxes":
                pick = glyphs[cls][int(rng.integers(len(glyphs[cls])))]
                alpha = np.clip(_resize(pick, size), 0, 1)
                mask = alpha > 0.25
            else:
                mask = _shape_mask(names[cls], size)
                alpha = mask.astype(np.float64)
            ys, xs = np.nonzero(mask)
            if len(xs) == 0:
                continue
            fg = rng.uniform(150, 255, size=3)
            region = canvas[:, y0 : y0 + size, x0 : x0 + size]
            canvas[:, y0 : y0 + size, x0 : x0 + size] = (
                region * (1 - alpha[None]) + fg[:, None, None] * alpha[None]
            )
            tight = (x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1)
            placed.append(tuple(float(v) for v in tight))  # type: ignore[arg-type]
            found_labels.append(k + 1)
        images.append(torch.from_numpy(canvas.clip(0, 255).astype(np.uint8)))
        boxes.append(torch.tensor(placed, dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor(found_labels, dtype=torch.int64))
    return DetSplit(boxes, labels, images=images)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


EMBEDDED_CLASSES: dict[str, list[str]] = {
    "shapes-boxes": list(SHAPES),
    "digits-boxes": [str(i) for i in range(10)],
}


# -- splits ----------------------------------------------------------------------------------
def _split(split: DetSplit, d: DataSection, seed: int) -> tuple[DetSplit, DetSplit, DetSplit]:
    n = len(split)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(n * d.val_fraction))
    n_test = round(n * d.test_fraction) if d.test_fraction > 0 else 0
    val, test, train = (
        order[:n_val],
        order[n_val : n_val + n_test],
        order[n_val + n_test :],
    )
    if d.fraction < 1.0:
        train = train[: max(1, round(len(train) * d.fraction))]
    return split.subset(train), split.subset(val), split.subset(test)


def build(cfg_data: DataSection, det: DetectSection, seed: int) -> DetData:
    """The data set a detect run names, split into train/val/test (seeded)."""
    if cfg_data.dataset in EMBEDDED_CLASSES:
        names = EMBEDDED_CLASSES[cfg_data.dataset]
        classes = list(cfg_data.classes) or names
        full = generate(cfg_data.dataset, classes, det, seed=1234)
    else:
        read = ann.read_coco if cfg_data.dataset == "coco" else ann.read_voc
        parsed = read(cfg_data, det)
        if parsed.issues:
            raise DataError(parsed.message())
        classes = parsed.classes
        full = DetSplit(
            [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in parsed.boxes],
            [torch.tensor(lb, dtype=torch.int64) for lb in parsed.labels],
            files=parsed.files,
        )
    train, val, test = _split(full, cfg_data, seed)
    counts = {
        "train": len(train),
        "val": len(val),
        "test": len(test),
        "boxes": int(sum(len(b) for b in full.boxes)),
    }
    return DetData(classes, train, val, test, counts)


# -- box-aware augmentation and batches --------------------------------------------------------
AUGMENT = ("none", "light")


def make_transform(preset: str) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """transforms.v2 over (image, {boxes: BoundingBoxes, labels}): boxes move with the image."""
    if preset == "none":
        return None
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.3, 0.3, 0.3, 0.05)], p=0.5),
            v2.RandomZoomOut(fill=0, side_range=(1.0, 1.5), p=0.3),
            v2.SanitizeBoundingBoxes(min_size=2),
        ]
    )


class _Images(torch.utils.data.Dataset[tuple[torch.Tensor, Target]]):
    def __init__(self, split: DetSplit, transform: Callable[[Any, Any], Any] | None) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        from torchvision import tv_tensors

        img = self.split.image(i)
        target: Target = {"boxes": self.split.boxes[i], "labels": self.split.labels[i]}
        if self.transform is not None:
            h, w = img.shape[-2:]
            boxes = tv_tensors.BoundingBoxes(
                target["boxes"], format="XYXY", canvas_size=(int(h), int(w))
            )
            img, target = self.transform(tv_tensors.Image(img), {**target, "boxes": boxes})
            target = {
                "boxes": target["boxes"].as_subclass(torch.Tensor),
                "labels": target["labels"],
            }
            img = img.as_subclass(torch.Tensor)
        return img, target


def _collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    return [b[0] for b in batch], [b[1] for b in batch]


def batch_count(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def batches(
    split: DetSplit,
    batch_size: int,
    shuffle_seed: int | None = None,
    epoch: int = 0,
    start_batch: int = 0,
    transform: Callable[[Any, Any], Any] | None = None,
    workers: int = 0,
    pin: bool = False,
    prefetch: int = 2,
) -> Iterator[tuple[list[torch.Tensor], list[Target]]]:
    """Lists of uint8 images and their targets; a seeded order per epoch, so a resumed run
    starts at `start_batch` of the same order. `pin`: in page-locked memory (CUDA)."""
    order = list(range(len(split)))
    if shuffle_seed is not None:
        g = torch.Generator().manual_seed(shuffle_seed * 100_003 + epoch)
        order = torch.randperm(len(split), generator=g).tolist()
    order = order[start_batch * batch_size :]
    if not order:
        return
    loader = torch.utils.data.DataLoader(
        _Images(split, transform),
        batch_size=batch_size,
        sampler=order,
        num_workers=workers,
        collate_fn=_collate,
        persistent_workers=False,
        pin_memory=pin,
        prefetch_factor=prefetch if workers > 0 else None,
    )
    yield from loader
