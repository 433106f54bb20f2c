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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tuneterm.engine.data import (
    DataError,
    batch_indices,
    default_workers,
    epoch_order,
    fraction,
    per_class,
    stratified,
)
from tuneterm.engine.kinds.classify.embedded import EMBEDDED
from tuneterm.engine.kinds.classify.embedded import load_digits as load_digits
from tuneterm.engine.kinds.classify.embedded import load_shapes as load_shapes
from tuneterm.engine.kinds.classify.resize import SQUASH, Resize
from tuneterm.engine.kinds.classify.shifts import apply_shift

if TYPE_CHECKING:
    from tuneterm.config import DataSection

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


# What each step removed or found, by name ("removed_dedup", "images", ...): shown at launch.
Counts = dict[str, int]


@dataclass
class DataBundle:
    classes: list[str]
    train: Split
    val: Split
    test: Split
    counts: dict[str, int]


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


def _count(full: Split, presplit: dict[str, Split]) -> int:
    return len(full) + sum(len(s) for s in presplit.values())


def _labelled_folder(folder: Path, resize: Resize) -> tuple[Split, list[str]]:
    files, names, classes = scan_folder(folder)
    lab = torch.tensor([classes.index(n) for n in names], dtype=torch.long)
    return Split(lab, None, files, resize=resize), classes


def _load_folder(root: Path, resize: Resize) -> tuple[dict[str, Split], list[str]]:
    """train/ val/ test/ under the root when present, else the root as the training folder."""
    presplit: dict[str, Split] = {}
    classes: list[str] = []
    for name in ("train", "val", "test"):
        if not (root / name).is_dir():
            continue
        split, split_classes = _labelled_folder(root / name, resize)
        if classes and split_classes != classes:
            raise DataError(
                f"data: {root / name} has classes {split_classes}, but train has {classes}"
            )
        # Labels index the first folder's classes, which every later folder must repeat.
        classes = classes or split_classes
        presplit[name] = split
    if "train" not in presplit:  # the root itself is the training folder
        presplit["train"], classes = _labelled_folder(root, resize)
    return presplit, classes


def _load(d: DataSection, resize: Resize) -> tuple[Split, dict[str, Split], list[str]]:
    """Step 1: the whole data set, plus the splits it ships with (val/ test/ folders, HF
    splits); returns (the pool to split, the given splits, the class names)."""
    if d.dataset in EMBEDDED:
        images, labels, classes = EMBEDDED[d.dataset](d.image_size)
        full, presplit = Split(labels, images), {}
    elif d.dataset == "hf":
        from tuneterm.engine.kinds.classify.hfimages import load as load_hf

        loaded, classes = load_hf(d, d.image_size, resize)
        presplit = {role: Split(*pair) for role, pair in loaded.items()}
        full = presplit.pop("train")
    else:
        presplit, classes = _load_folder(Path(d.root).expanduser(), resize)
        full = presplit.pop("train")
    if len(classes) < 2:
        raise DataError(
            f"data: found a single class ({classes[0]}); classification needs at least 2"
        )
    return full, presplit, classes


def _keep(
    full: Split, presplit: dict[str, Split], classes: list[str], wanted: list[str], field: str
) -> tuple[Split, dict[str, Split], list[str]]:
    """`wanted` classes only, relabelled in that order, in the pool and every given split."""

    def one(split: Split) -> Split:
        keep, new, _ = _select_classes(split.labels, classes, wanted, field)
        out = split.subset(keep)
        out.labels = new
        return out

    return one(full), {name: one(s) for name, s in presplit.items()}, list(wanted)


def _keep_classes(
    d: DataSection, full: Split, presplit: dict[str, Split], classes: list[str], counts: Counts
) -> tuple[Split, dict[str, Split], list[str]]:
    """Step 2: data.classes, then data.exclude."""
    if d.classes:
        full, presplit, classes = _keep(full, presplit, classes, d.classes, "data.classes")
    if d.exclude:
        before = _count(full, presplit)
        unknown = [c for c in d.exclude if c not in classes]
        if unknown:
            raise DataError(
                f"data.exclude = {unknown}: not in the data set (classes: {', '.join(classes)})"
            )
        wanted = [c for c in classes if c not in d.exclude]
        full, presplit, classes = _keep(full, presplit, classes, wanted, "data.exclude")
        counts["removed_exclude"] = before - _count(full, presplit)
        if len(classes) < 2:
            raise DataError(f"data.exclude: leaves {len(classes)} class(es); need at least 2")
    return full, presplit, classes


def _dedup(
    d: DataSection, full: Split, presplit: dict[str, Split], counts: Counts
) -> tuple[Split, dict[str, Split]]:
    """Step 3: data.dedup, before splitting, so no image is in two splits."""
    if d.dedup:
        before = _count(full, presplit)
        full = dedup(full)
        presplit = {name: dedup(split) for name, split in presplit.items()}
        counts["removed_dedup"] = before - _count(full, presplit)
    counts["images"] = _count(full, presplit)
    return full, presplit


def _split(
    d: DataSection, full: Split, presplit: dict[str, Split], seed: int
) -> tuple[Split, Split, Split]:
    """Step 4: a stratified seeded split of the pool into the splits not given."""
    val_frac = 0.0 if "val" in presplit else d.val_fraction
    test_frac = 0.0 if "test" in presplit else d.test_fraction
    rest, val_idx, test_idx = stratified(full.labels, (val_frac, test_frac), seed)
    val = presplit.get("val") or full.subset(val_idx)
    test = presplit.get("test") or full.subset(test_idx)
    return full.subset(rest), val, test


def _reduce(d: DataSection, train: Split, seed: int, counts: Counts) -> Split:
    """Step 5: data.fraction, then data.per_class, of the training split only."""
    if d.fraction < 1.0:
        before = len(train)
        train = train.subset(fraction(train.labels, d.fraction, seed))
        counts["removed_fraction"] = before - len(train)
    if d.per_class:
        before = len(train)
        train = train.subset(per_class(train.labels, d.per_class, seed))
        counts["removed_per_class"] = before - len(train)
    return train


def _cache_and_shift(d: DataSection, splits: tuple[Split, ...]) -> tuple[Split, ...]:
    """Step 6: decode into RAM when the set fits data.cache_gb, then data.shift (once, on
    cached images; on decode for streamed ones)."""
    size = d.image_size
    budget = sum(len(s) for s in splits) * 3 * size * size
    if budget <= getattr(d, "cache_gb", CACHE_BYTES / 2**30) * 2**30:
        workers = default_workers() if d.workers < 0 else d.workers
        splits = tuple(_cache(s, size, workers) for s in splits)
    if d.shift != "none":
        for split in splits:
            split.shift = d.shift
            if split.images is not None:
                split.images = apply_shift(split.images, d.shift)
                split.shift = "none"
    return splits


def build(cfg_data: object, seed: int, resize: Resize = SQUASH) -> DataBundle:
    """Load, filter, split and reduce the data set that `cfg.data` names; image files are
    decoded the `resize` way (the model's own for timm and HF models)."""
    from tuneterm.config import DataSection

    assert isinstance(cfg_data, DataSection)
    d = cfg_data
    counts: Counts = {}
    full, presplit, classes = _load(d, resize)
    full, presplit, classes = _keep_classes(d, full, presplit, classes, counts)
    full, presplit = _dedup(d, full, presplit, counts)
    seed = d.split_seed if d.split_seed >= 0 else seed
    train, val, test = _split(d, full, presplit, seed)
    if d.relabel:
        # After the split, which is stratified by the original classes: the same seed gives
        # the same held-out images with or without relabelling (no leak between tasks).
        (train, val, test), classes = _relabel([train, val, test], classes, d.relabel)
        if len(classes) < 2:
            raise DataError(f"data.relabel: makes a single class ({classes[0]}); need at least 2")
    train = _reduce(d, train, seed, counts)
    if len(val) == 0:
        raise DataError(
            "data: the validation split is empty; raise data.val_fraction or add a val/ folder"
        )
    train, val, test = _cache_and_shift(d, (train, val, test))
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
