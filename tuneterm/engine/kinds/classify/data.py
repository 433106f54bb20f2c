"""Data sets by name, stratified seeded splits, and batch iterators that can resume mid-epoch.

Every split is decoded once into a uint8 tensor in RAM (N, 3, S, S) when it fits under
`CACHE_BYTES`: small fine-tuning sets then cost no decoding after the first pass. Larger
folders stream through a DataLoader with workers. Batches stay uint8 until they reach the
device, where they are normalised (see task.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from tuneterm.engine.data import (
    DataError,
    batch_indices,
    default_workers,
    epoch_order,
    fraction,
    per_class,
    stratified,
)
from tuneterm.engine.kinds.classify.resize import SQUASH, Resize
from tuneterm.engine.kinds.classify.shifts import apply_shift
from tuneterm.tasks.classify import SHAPES

CACHE_BYTES = 4 << 30
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass
class Split:
    """Images in memory (`images`), or on disk (`files`) decoded on the fly."""

    labels: torch.Tensor
    images: torch.Tensor | None = None
    files: list[Path] | None = None
    shift: str = "none"  # applied on decode to streamed files (cached images are shifted once)
    resize: Resize = SQUASH  # how its files are decoded to S x S (the model's own way)
    loader: Any = field(default=None, repr=False, compare=False)  # a persistent DataLoader

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor) -> Split:
        images = self.images[idx] if self.images is not None else None
        files = [self.files[i] for i in idx.tolist()] if self.files is not None else None
        return Split(self.labels[idx], images, files, self.shift, self.resize)


@dataclass
class DataBundle:
    classes: list[str]
    train: Split
    val: Split
    test: Split
    counts: dict[str, int]


# -- embedded data sets -------------------------------------------------------------------
def _to_rgb(gray: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 3, size, size) uint8."""
    x = gray.float().unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def load_digits(size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """scikit-learn's digits: 1,797 real 8x8 handwritten digits, shipped inside the package."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    gray = torch.from_numpy((d.images * 16).clip(0, 255).astype(np.uint8))
    return (
        _to_rgb(gray, size),
        torch.from_numpy(d.target.astype(np.int64)),
        [str(i) for i in range(10)],
    )


def load_shapes(
    size: int, per_class: int = 200, seed: int = 1234
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Generated coloured shapes at random positions and scales on noisy backgrounds."""
    rng = np.random.default_rng(seed)
    base = 32
    yy, xx = np.mgrid[0:base, 0:base].astype(np.float32)
    images, labels = [], []
    for label, shape in enumerate(SHAPES):
        for _ in range(per_class):
            r = rng.uniform(6, 12)
            cy, cx = rng.uniform(r, base - r, size=2)
            dy, dx = yy - cy, xx - cx
            if shape == "circle":
                mask = dy**2 + dx**2 <= r**2
            elif shape == "square":
                mask = (abs(dy) <= r * 0.8) & (abs(dx) <= r * 0.8)
            elif shape == "triangle":
                mask = (dy <= r * 0.7) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
            elif shape == "cross":
                mask = ((abs(dy) <= r / 4) & (abs(dx) <= r)) | ((abs(dx) <= r / 4) & (abs(dy) <= r))
            elif shape == "ring":
                d2 = dy**2 + dx**2
                mask = (d2 <= r**2) & (d2 >= (r * 0.55) ** 2)
            else:  # bar
                mask = (abs(dy) <= r / 4) & (abs(dx) <= r)
            bg = rng.uniform(0, 120, size=3)
            fg = rng.uniform(135, 255, size=3)
            img = bg[:, None, None] + rng.normal(0, 12, size=(3, base, base))
            img = np.where(mask[None], fg[:, None, None], img)
            images.append(img.clip(0, 255).astype(np.uint8))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8), torch.tensor(labels), list(SHAPES)


EMBEDDED: dict[str, Callable[[int], tuple[torch.Tensor, torch.Tensor, list[str]]]] = {
    "digits": load_digits,
    "shapes": load_shapes,
}


# -- folders ----------------------------------------------------------------------------
def scan_folder(folder: Path) -> tuple[list[Path], list[str], list[str]]:
    """(files, their class names, sorted class names) of an ImageFolder-style tree."""
    if not folder.is_dir():
        raise DataError(f"data: {folder} is not a folder")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"data: {folder} has no class folders (expected {folder}/<class>/<image>)")
    files: list[Path] = []
    names: list[str] = []
    for cls in classes:
        found = sorted(
            p for p in (folder / cls).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS
        )
        if not found:
            raise DataError(
                f"data: class folder {folder / cls} has no images ({', '.join(sorted(IMAGE_EXTS))})"
            )
        files += found
        names += [cls] * len(found)
    return files, names, classes


def decode(path: Path, size: int, resize: Resize = SQUASH) -> torch.Tensor:
    """One image file as (3, size, size) uint8, whatever its mode (grayscale, RGBA, palette)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as src:
            rgb = resize.apply(src.convert("RGB"), size)
            arr = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"data: cannot read image {path}: {exc}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


class _FileDataset(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    def __init__(
        self, split: Split, size: int, transform: Callable[[torch.Tensor], torch.Tensor] | None
    ) -> None:
        assert split.files is not None
        self.files, self.labels, self.size, self.transform = (
            split.files,
            split.labels,
            size,
            transform,
        )
        self.shift, self.resize = split.shift, split.resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = apply_shift(decode(self.files[i], self.size, self.resize)[None], self.shift)[0]
        return (self.transform(x) if self.transform else x), int(self.labels[i])


def _cache(split: Split, size: int, workers: int) -> Split:
    """Decode every file once into RAM, in parallel."""
    if split.files is None or len(split) == 0:
        return split
    ds = _FileDataset(split, size, None)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers)
    xs = [x for x, _ in loader]
    return Split(split.labels, torch.cat(xs), None)


# -- splitting and reduction ------------------------------------------------------------------


def content_hashes(split: Split) -> list[str]:
    """A content hash per image: the decoded pixels in RAM, or the file's bytes on disk."""
    import hashlib

    if split.images is not None:
        flat = split.images.reshape(len(split), -1).numpy()
        return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in flat]
    assert split.files is not None
    return [hashlib.blake2b(f.read_bytes(), digest_size=16).hexdigest() for f in split.files]


def dedup(split: Split) -> Split:
    """The first image of each content hash, in order."""
    seen: set[str] = set()
    keep = []
    for i, h in enumerate(content_hashes(split)):
        if h not in seen:
            seen.add(h)
            keep.append(i)
    return split.subset(torch.tensor(keep, dtype=torch.long))


def _select_classes(
    labels: torch.Tensor, classes: list[str], wanted: list[str], field: str = "data.classes"
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Keep only `wanted` classes (in that order); returns (kept index, new labels, names)."""
    unknown = [w for w in wanted if w not in classes]
    if unknown:
        raise DataError(f"{field} = {unknown}: not in the data set (classes: {', '.join(classes)})")
    order = {classes.index(w): i for i, w in enumerate(wanted)}
    keep = torch.tensor([i for i, y in enumerate(labels.tolist()) if y in order], dtype=torch.long)
    new = torch.tensor([order[y] for y in labels[keep].tolist()], dtype=torch.long)
    return keep, new, list(wanted)


def build(cfg_data: object, seed: int, resize: Resize = SQUASH) -> DataBundle:
    """Load, filter, split and reduce the data set that `cfg.data` names; image files are
    decoded the `resize` way (the model's own for timm and HF models)."""
    from tuneterm.config import DataSection

    assert isinstance(cfg_data, DataSection)
    d = cfg_data
    size = d.image_size
    workers = default_workers() if d.workers < 0 else d.workers
    counts: dict[str, int] = {}
    if d.dataset in EMBEDDED:
        images, labels, classes = EMBEDDED[d.dataset](size)
        full = Split(labels, images)
        presplit: dict[str, Split] = {}
    elif d.dataset == "hf":
        from tuneterm.engine.kinds.classify.hfimages import load as load_hf

        loaded, classes = load_hf(d, size, resize)
        presplit = {role: Split(*pair) for role, pair in loaded.items()}
        full = presplit.pop("train")
    else:
        root = Path(d.root).expanduser()
        presplit = {}
        classes = []
        for name in ("train", "val", "test"):
            if (root / name).is_dir():
                files, names, split_classes = scan_folder(root / name)
                if not classes:
                    classes = split_classes
                elif split_classes != classes:
                    raise DataError(
                        f"data: {root / name} has classes {split_classes}, but train has {classes}"
                    )
                lab = torch.tensor([classes.index(n) for n in names], dtype=torch.long)
                presplit[name] = Split(lab, None, files, resize=resize)
        if "train" not in presplit:  # the root itself is the training folder
            files, names, classes = scan_folder(root)
            lab = torch.tensor([classes.index(n) for n in names], dtype=torch.long)
            presplit["train"] = Split(lab, None, files, resize=resize)
        full = presplit.pop("train")
    if len(classes) < 2:
        raise DataError(
            f"data: found a single class ({classes[0]}); classification needs at least 2"
        )
    if d.classes:
        all_classes = classes
        keep, new, classes = _select_classes(full.labels, all_classes, d.classes)
        full = full.subset(keep)
        full.labels = new
        for name, split in list(presplit.items()):
            k, n, _ = _select_classes(split.labels, all_classes, d.classes)
            presplit[name] = split.subset(k)
            presplit[name].labels = n
    if d.exclude:
        before = len(full) + sum(len(s) for s in presplit.values())
        wanted = [c for c in classes if c not in d.exclude]
        unknown = [c for c in d.exclude if c not in classes]
        if unknown:
            raise DataError(
                f"data.exclude = {unknown}: not in the data set (classes: {', '.join(classes)})"
            )
        all_classes = classes
        keep, new, classes = _select_classes(full.labels, all_classes, wanted, "data.exclude")
        full = full.subset(keep)
        full.labels = new
        for name, split in list(presplit.items()):
            k, n, _ = _select_classes(split.labels, all_classes, wanted, "data.exclude")
            presplit[name] = split.subset(k)
            presplit[name].labels = n
        counts["removed_exclude"] = before - len(full) - sum(len(s) for s in presplit.values())
        if len(classes) < 2:
            raise DataError(f"data.exclude: leaves {len(classes)} class(es); need at least 2")
    if d.dedup:  # before splitting, so no image is in two splits
        before = len(full) + sum(len(s) for s in presplit.values())
        full = dedup(full)
        presplit = {name: dedup(split) for name, split in presplit.items()}
        counts["removed_dedup"] = before - len(full) - sum(len(s) for s in presplit.values())
    counts["images"] = len(full) + sum(len(s) for s in presplit.values())
    val_frac = 0.0 if "val" in presplit else d.val_fraction
    test_frac = 0.0 if "test" in presplit else d.test_fraction
    rest, val_idx, test_idx = stratified(full.labels, (val_frac, test_frac), seed)
    train = full.subset(rest)
    val = presplit.get("val") or full.subset(val_idx)
    test = presplit.get("test") or full.subset(test_idx)
    if d.relabel:
        # After the split, which is stratified by the original classes: the same seed gives
        # the same held-out images with or without relabelling (no leak between tasks).
        (train, val, test), classes = _relabel([train, val, test], classes, d.relabel)
        if len(classes) < 2:
            raise DataError(f"data.relabel: makes a single class ({classes[0]}); need at least 2")
    if d.fraction < 1.0:
        before = len(train)
        train = train.subset(fraction(train.labels, d.fraction, seed))
        counts["removed_fraction"] = before - len(train)
    if d.per_class:
        before = len(train)
        train = train.subset(per_class(train.labels, d.per_class, seed))
        counts["removed_per_class"] = before - len(train)
    if len(val) == 0:
        raise DataError(
            "data: the validation split is empty; raise data.val_fraction or add a val/ folder"
        )
    budget = sum(len(s) for s in (train, val, test)) * 3 * size * size
    if budget <= getattr(d, "cache_gb", CACHE_BYTES / 2**30) * 2**30:
        train, val, test = (_cache(s, size, workers) for s in (train, val, test))
    if d.shift != "none":
        for split in (train, val, test):
            split.shift = d.shift
            if split.images is not None:
                split.images = apply_shift(split.images, d.shift)
                split.shift = "none"
    counts.update(train=len(train), val=len(val), test=len(test))
    return DataBundle(classes, train, val, test, counts)


def _relabel(
    splits: list[Split], classes: list[str], mapping: dict[str, list[str]]
) -> tuple[list[Split], list[str]]:
    """Merge old classes into new ones (`data.relabel`); classes not listed are dropped."""
    target: dict[int, int] = {}
    for new_index, (name, olds) in enumerate(mapping.items()):
        for old in olds:
            if old not in classes:
                raise DataError(
                    f"data.relabel.{name}: class {old!r} is not in the data set "
                    f"(classes: {', '.join(classes)})"
                )
            if classes.index(old) in target:
                raise DataError(f"data.relabel.{name}: class {old!r} is already in another group")
            target[classes.index(old)] = new_index

    def apply(split: Split) -> Split:
        keep = [i for i, y in enumerate(split.labels.tolist()) if y in target]
        out = split.subset(torch.tensor(keep, dtype=torch.long))
        out.labels = torch.tensor([target[y] for y in out.labels.tolist()], dtype=torch.long)
        return out

    return [apply(s) for s in splits], list(mapping)


# -- batches ----------------------------------------------------------------------------


def batches(
    split: Split,
    batch_size: int,
    size: int,
    *,
    shuffle_seed: int | None = None,
    epoch: int = 0,
    start_batch: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    workers: int = 0,
    pin: bool = False,
    prefetch: int = 4,
    persistent: bool = False,
    shard: tuple[int, int] = (0, 1),
    drop_single: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 image batches and int64 labels, in the epoch's order, from `start_batch` on.

    In-RAM splits are sliced in this process; streamed ones go through a DataLoader with
    `workers` processes, kept alive across epochs when `persistent`.

    `shard = (rank, world)` gives one rank of a distributed run its share (engine/ddp.py):
    shuffled (training) orders are padded so every rank runs the same number of steps;
    unshuffled (evaluation) orders are not, so no image counts twice. `drop_single = False`
    keeps a last batch of one image (evaluation in eval mode; BatchNorm in train mode needs 2)."""
    order = epoch_order(len(split), shuffle_seed, epoch) if shuffle_seed is not None else None
    rank, world = shard
    if world > 1:
        from tuneterm.engine.ddp import shard as share

        full = order if order is not None else torch.arange(len(split))
        order = share(full, rank, world, pad=shuffle_seed is not None)
    plan = batch_indices(len(split), batch_size, order, start_batch, drop_single)
    if split.images is not None:
        for idx in plan:
            x = split.images[idx]
            if transform is not None:
                x = torch.stack([transform(img) for img in x])
            yield (x.pin_memory() if pin else x), split.labels[idx]
        return
    if persistent and workers > 0:
        # One loader per split, kept on it: its worker processes live across epochs, and each
        # epoch only swaps the batch plan (read when the loader's iterator resets).
        key = (size, id(transform), workers, pin, prefetch)
        if split.loader is None or split.loader[0] != key:
            sampler = _Plan()
            split.loader = (
                key,
                sampler,
                _make_loader(split, size, transform, sampler, workers, pin, prefetch, True),
            )
        _, sampler, loader = split.loader
        sampler.plan = [b.tolist() for b in plan]
        yield from loader
        return
    sampler = _Plan([b.tolist() for b in plan])
    yield from _make_loader(split, size, transform, sampler, workers, pin, prefetch, False)


class _Plan:
    """A batch sampler whose batches can be replaced between epochs."""

    def __init__(self, plan: list[list[int]] | None = None) -> None:
        self.plan = plan or []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.plan)

    def __len__(self) -> int:
        return len(self.plan)


def _make_loader(
    split: Split,
    size: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
    sampler: _Plan,
    workers: int,
    pin: bool,
    prefetch: int,
    persistent: bool,
) -> torch.utils.data.DataLoader[Any]:
    return torch.utils.data.DataLoader(
        _FileDataset(split, size, transform),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=persistent,
        prefetch_factor=prefetch if workers > 0 else None,
    )
