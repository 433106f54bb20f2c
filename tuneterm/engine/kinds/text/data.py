"""Labelled texts: readers (CSV, JSONL, a folder per class), a generated set, stratified splits,
tokenization once up front, and padded batches that can resume mid-epoch.

A batch is one int64 tensor `x` of shape (B, 2, L): token ids and the attention mask stacked,
so the techniques that call `model(x)` (distillation's teacher) work unchanged.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tuneterm.config import DataSection
from tuneterm.engine.data import (
    DataError,
    batch_indices,
    epoch_order,
    fraction,
    per_class,
    stratified,
)
from tuneterm.tasks.text import TextSection


@dataclass
class Example:
    text: str
    label: str
    where: str  # "file:line" (or "file"), for error messages


@dataclass
class TextSplit:
    labels: torch.Tensor  # int64 (N,)
    texts: list[str]
    where: list[str]
    ids: list[list[int]] = field(default_factory=list)  # token ids, filled by `tokenize`

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor) -> TextSplit:
        pick = idx.tolist()
        return TextSplit(
            self.labels[idx],
            [self.texts[i] for i in pick],
            [self.where[i] for i in pick],
            [self.ids[i] for i in pick] if self.ids else [],
        )


@dataclass
class TextData:
    classes: list[str]
    train: TextSplit
    val: TextSplit
    test: TextSplit
    counts: dict[str, int]


# -- the generated set ----------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return text.split()


TOPICS: dict[str, list[str]] = {
    "sports": _words(
        "match goal striker referee league coach stadium tournament keeper penalty season "
        "championship team captain defender sprint marathon medal racket umpire"
    ),
    "weather": _words(
        "rain storm forecast cloud thunder drizzle snow breeze humidity sunshine frost fog "
        "temperature wind hail heatwave drought showers gale umbrella"
    ),
    "food": _words(
        "recipe soup bread oven flavour spice dessert noodles garlic salad cheese bakery "
        "dinner roast sauce pastry breakfast chef kitchen menu"
    ),
    "tech": _words(
        "software laptop chip server update battery network browser startup algorithm robot "
        "database app processor cloud code phone screen keyboard engineer"
    ),
}
_FILLER = _words(
    "today yesterday really quite very new old big small long short early late great "
    "strange usual local whole"
)
_TEMPLATES = (
    "the {a} was {f} after the {b}",
    "everyone talked about the {a} and the {b} {f}",
    "a {f} {a} made the {b} look {g}",
    "i read a {f} story about a {a}",
    "{f} news: the {a} and another {b}",
    "nobody expected the {a} to be so {f}",
    "my friend said the {b} felt {f} {g}",
    "what a {f} {a}",
)


def topics(seed: int = 1234, per_class: int = 150, noise: float = 0.35) -> list[Example]:
    """Short sentences about four topics from templates and topic words, deterministic by seed.

    With probability `noise` one topic word is swapped for a word of another topic, so the set
    is not solved by a single word and the techniques' differences show."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    out: list[Example] = []
    for label in names:
        for i in range(per_class):
            words = TOPICS[label]
            a, b = (words[j] for j in rng.choice(len(words), size=2, replace=False))
            if rng.random() < noise:
                other = TOPICS[names[(names.index(label) + 1 + rng.integers(3)) % len(names)]]
                b = other[rng.integers(len(other))]
            f, g = (_FILLER[j] for j in rng.choice(len(_FILLER), size=2, replace=False))
            text = _TEMPLATES[rng.integers(len(_TEMPLATES))].format(a=a, b=b, f=f, g=g)
            out.append(Example(text, label, f"topics:{label}:{i}"))
    return out


# -- readers ---------------------------------------------------------------------------------------
def _example(row: dict[str, Any], text: TextSection, where: str) -> Example:
    """One row's text and label, each named by its setting when it is missing or bad."""
    return Example(
        _cell(row, text.text_column, where, "text.text_column"),
        _cell(row, text.label_column, where, "text.label_column").strip(),
        where,
    )


def _cell(row: dict[str, Any], column: str, where: str, field_name: str) -> str:
    value = row.get(column)
    if value is None:
        raise DataError(
            f"{where}: no {field_name} {column!r} (columns: {', '.join(map(str, row))}); "
            f"set {field_name}"
        )
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: column {column!r} is {type(value).__name__}, expected text")
    if not value.strip():
        raise DataError(f"{where}: column {column!r} is empty")
    return value


def read_csv(path: Path, text: TextSection) -> list[Example]:
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col, key in (
            (text.text_column, "text.text_column"),
            (text.label_column, "text.label_column"),
        ):
            if col not in header:
                raise DataError(
                    f"{path}: line 1: no column {col!r} for {key} (columns: {', '.join(header)})"
                )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:
                raise DataError(f"{where}: more fields than the header has ({len(header)})")
            out.append(_example(row, text, where))
    return out


def read_jsonl(path: Path, text: TextSection) -> list[Example]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object per line")
            out.append(_example(row, text, where))
    return out


def read_textfolder(root: Path) -> list[Example]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<file>.txt)")
    out = []
    for cls in classes:
        files = sorted((root / cls).glob("*.txt"))
        if not files:
            raise DataError(f"{root / cls}: class folder has no .txt files")
        for f in files:
            try:
                body = f.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{f}: not UTF-8 text (byte {exc.start})") from None
            if not body.strip():
                raise DataError(f"{f}: empty file")
            out.append(Example(body.strip(), cls, str(f)))
    return out


def read_hf(d: DataSection, text: TextSection) -> list[Example]:
    """Every split of a Hugging Face data set (texts and labels by name): this kind splits
    and reduces them itself, as for files."""
    from tuneterm.config.hfdata import HFDataError, open_splits

    try:
        s = open_splits(d.root, d.split, text.label_column)
    except HFDataError as exc:
        raise DataError(str(exc.issue)) from None
    out = []
    for ds in (s.train, s.val, s.test):
        if ds is None:
            continue
        if text.text_column not in ds.column_names:
            raise DataError(f"text.text_column = {text.text_column!r}: no such column")
        feature = ds.features[text.label_column]
        names = getattr(feature, "names", None)
        for i, (body, label) in enumerate(
            zip(ds[text.text_column], ds[text.label_column], strict=True)
        ):
            shown = names[int(label)] if names else str(label)
            out.append(Example(str(body), shown, f"{d.root}[{i}]"))
    return out


def read(d: DataSection, text: TextSection) -> list[Example]:
    if d.dataset == "topics":
        return topics()
    root = Path(d.root).expanduser()
    try:
        if d.dataset == "csv":
            rows = read_csv(root, text)
        elif d.dataset == "jsonl":
            rows = read_jsonl(root, text)
        elif d.dataset == "textfolder":
            rows = read_textfolder(root)
        elif d.dataset == "hf":
            rows = read_hf(d, text)
        else:
            raise DataError(f"data.dataset = {d.dataset!r}: not a text data set")
    except UnicodeDecodeError as exc:
        raise DataError(f"{root}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"data.root = {d.root!r}: cannot read ({exc.strerror})") from None
    if not rows:
        raise DataError(f"{root}: no examples")
    return rows


# -- the bundle ----------------------------------------------------------------------------------
def build(d: DataSection, text: TextSection, seed: int) -> TextData:
    """Read, keep the wanted classes, split (stratified, seeded), reduce the training split."""
    seed = d.split_seed if d.split_seed >= 0 else seed
    wanted, rows = _keep_classes(read(d, text), d)
    index = {c: i for i, c in enumerate(wanted)}
    full = TextSplit(
        torch.tensor([index[r.label] for r in rows], dtype=torch.long),
        [r.text for r in rows],
        [r.where for r in rows],
    )
    rest, val, test = (
        full.subset(i) for i in stratified(full.labels, (d.val_fraction, d.test_fraction), seed)
    )
    rest = _reduce(rest, d, seed)
    if len(rest) == 0 or len(val) == 0:
        raise DataError(
            f"data: {len(full)} examples leave train {len(rest)}, val {len(val)}; need more data "
            "or another data.val_fraction"
        )
    counts = {"examples": len(full), "train": len(rest), "val": len(val), "test": len(test)}
    return TextData(wanted, rest, val, test, counts)


def _keep_classes(rows: list[Example], d: DataSection) -> tuple[list[str], list[Example]]:
    """The classes the run learns (data.classes, less data.exclude) and the rows of those."""
    classes = sorted({r.label for r in rows})
    for field_name, names in (("data.classes", d.classes), ("data.exclude", d.exclude)):
        unknown = [c for c in names if c not in classes]
        if unknown:
            raise DataError(f"{field_name} = {unknown}: not in the data set (classes: {classes})")
    wanted = [c for c in (d.classes or classes) if c not in d.exclude]
    if len(wanted) < 2:
        raise DataError(f"data: {len(wanted)} class(es) ({', '.join(wanted)}); need at least 2")
    keep = set(wanted)
    return wanted, [r for r in rows if r.label in keep]


def _reduce(rest: TextSplit, d: DataSection, seed: int) -> TextSplit:
    """data.per_class, then data.fraction, of the training split."""
    if d.per_class:
        rest = rest.subset(per_class(rest.labels, d.per_class, seed))
    if d.fraction < 1.0:
        rest = rest.subset(fraction(rest.labels, d.fraction, seed))
    return rest


def tokenize(split: TextSplit, tokenizer: Any, text: TextSection) -> None:
    """Token ids of every text, once (no padding here; batches pad)."""
    if not len(split):
        return
    enc = tokenizer(
        split.texts,
        truncation=text.truncation,
        max_length=text.max_length if text.truncation else None,
        add_special_tokens=True,
    )
    split.ids = [list(ids) for ids in enc["input_ids"]]
    if not text.truncation:
        for ids, where in zip(split.ids, split.where, strict=True):
            if len(ids) > text.max_length:
                raise DataError(
                    f"{where}: text is {len(ids)} tokens, over text.max_length = "
                    f"{text.max_length}; raise it or set text.truncation = true"
                )


def collate(ids: list[list[int]], pad_id: int, length: int | None = None) -> torch.Tensor:
    """(B, 2, L) int64: token ids padded with `pad_id`, and the attention mask."""
    width = length or max(len(i) for i in ids)
    x = torch.full((len(ids), 2, width), pad_id, dtype=torch.long)
    x[:, 1] = 0
    for row, seq in enumerate(ids):
        x[row, 0, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        x[row, 1, : len(seq)] = 1
    return x


def batches(
    split: TextSplit,
    batch_size: int,
    pad_id: int,
    length: int | None,
    *,
    shuffle_seed: int | None = None,
    epoch: int = 0,
    start_batch: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Padded batches in the epoch's order from `start_batch` on; `length` None = dynamic."""
    order = epoch_order(len(split), shuffle_seed, epoch) if shuffle_seed is not None else None
    for idx in batch_indices(len(split), batch_size, order, start_batch):
        yield collate([split.ids[i] for i in idx.tolist()], pad_id, length), split.labels[idx]
