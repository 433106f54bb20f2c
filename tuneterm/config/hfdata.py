"""Hugging Face datasets as a data source (`data.dataset = "hf"`), without torch.

`data.root` names a `save_to_disk` folder, a local imagefolder (class folders of images), a
parquet file or a folder of them, or a hub name (`ORG/NAME`, when online). The columns are
checked before a run is created: the image, label and text columns exist, the image column
holds images, and the class names come from the label column's `ClassLabel` feature (else
from its sorted values). Both the launch checks and the engine open data sets through `open_splits`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config.launch import reachable
from tuneterm.errors import ConfigIssue

if TYPE_CHECKING:
    from tuneterm.config.schema import RunConfig

HF_HOST = "huggingface.co"
VAL_NAMES = ("validation", "val", "valid", "dev")
PIP = "pip install 'tuneterm[datasets]'"


class HFDataError(ValueError):
    """A data set that cannot be used; `field` names the config key at fault."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(reason)
        self.issue = ConfigIssue(field, value, reason)


@dataclass
class HFSplits:
    """The splits a run uses: train, and val/test when the data set has them."""

    train: Any  # datasets.Dataset
    val: Any | None
    test: Any | None
    classes: list[str]
    names: dict[str, str]  # train/val/test -> the data set's split name


def _open(root: str) -> Any:
    """A DatasetDict or Dataset for data.root."""
    try:
        import datasets
    except ImportError:
        raise HFDataError(
            "data.dataset", "hf", f"needs datasets, not installed here: {PIP}"
        ) from None
    path = Path(root).expanduser()
    try:
        if path.is_dir() and any(
            (path / f).is_file() for f in ("dataset_dict.json", "dataset_info.json", "state.json")
        ):
            return datasets.load_from_disk(str(path))
        if path.is_file() and path.suffix == ".parquet":
            return datasets.load_dataset("parquet", data_files=str(path))
        if path.is_dir() and any(path.rglob("*.parquet")):
            files = sorted(str(p) for p in path.rglob("*.parquet"))
            return datasets.load_dataset("parquet", data_files=files)
        if path.is_dir():
            return datasets.load_dataset("imagefolder", data_dir=str(path))
    except (OSError, ValueError, FileNotFoundError) as exc:
        raise HFDataError("data.root", root, f"cannot read as a data set: {exc}") from None
    if path.exists() or root.startswith((".", "/", "~")) or root.count("/") != 1:
        raise HFDataError(
            "data.root",
            root,
            "not a save_to_disk folder, imagefolder, parquet file or hub name ORG/NAME",
        )

    offline = os.environ.get("HF_DATASETS_OFFLINE", "") not in ("", "0")
    if offline or not reachable(HF_HOST):
        raise HFDataError(
            "data.root",
            root,
            f"a hub data set, and {HF_HOST} cannot be reached. On a machine online run "
            f'datasets.load_dataset("{root}").save_to_disk(DIR), copy DIR here and set '
            "data.root = DIR",
        )
    try:
        return datasets.load_dataset(root)
    except Exception as exc:  # the hub raises many types: missing repo, gated, no network
        raise HFDataError("data.root", root, f"cannot load from the hub: {exc}") from None


def open_splits(root: str, split: str, label_column: str) -> HFSplits:
    """The train split (`data.split`, else "train", else the only one), the val and test
    splits when present, and the class names."""
    import datasets

    ds = _open(root)
    named: dict[str, Any] = dict(ds) if isinstance(ds, datasets.DatasetDict) else {"train": ds}
    want = split or ("train" if "train" in named or len(named) != 1 else next(iter(named)))
    if want not in named:
        raise HFDataError(
            "data.split", split, f"no such split; the data set has {', '.join(named)}"
        )
    names = {"train": want}
    for role, candidates in (("val", VAL_NAMES), ("test", ("test",))):
        found = next((c for c in candidates if c in named and c != want), None)
        if found:
            names[role] = found
    train = named[want]
    if label_column not in train.column_names:
        raise HFDataError(
            "data.label_column",
            label_column,
            f"no such column; the data set has {', '.join(train.column_names)}",
        )
    feature = train.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        classes = list(feature.names)
    else:
        classes = sorted({str(v) for v in train[label_column]})
    return HFSplits(
        train,
        named.get(names.get("val", "")),
        named.get(names.get("test", "")),
        classes,
        names,
    )


def labels_of(ds: Any, column: str, classes: list[str]) -> list[int]:
    """A split's labels as indices into `classes` (ClassLabel ints, or values by name)."""
    import datasets

    values = ds[column]
    if isinstance(ds.features[column], datasets.ClassLabel):
        return [int(v) for v in values]
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for v in values:
        if str(v) not in index:
            raise HFDataError("data.label_column", column, f"label {v!r} is not in the train split")
        out.append(index[str(v)])
    return out


def image_problem(ds: Any, column: str) -> str | None:
    """Why `column` of a split does not hold images, or None."""
    import datasets

    if column not in ds.column_names:
        return f"no such column; the data set has {', '.join(ds.column_names)}"
    feature = ds.features[column]
    if isinstance(feature, datasets.Image):
        return None
    shown = getattr(feature, "dtype", type(feature).__name__)
    return f"holds {shown} values, not images (an Image feature)"


def issues(
    cfg: RunConfig, image: bool, text_columns: tuple[str, str] = ("", "")
) -> list[ConfigIssue]:
    """The launch checks of an hf data set: it opens, and its columns exist and hold what the
    run reads (`image`: an image column and a label column; else `text_columns`, the text
    kind's text.text_column and text.label_column)."""
    d = cfg.data
    if not d.root:
        return [ConfigIssue("data.root", "", "required when data.dataset = hf")]
    text_column, text_label = text_columns
    label = d.label_column if image else text_label
    try:
        splits = open_splits(d.root, d.split, label)
    except HFDataError as exc:
        if not image and exc.issue.field == "data.label_column":
            return [ConfigIssue("text.label_column", label, str(exc))]
        return [exc.issue]
    found: list[ConfigIssue] = []
    for role, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        if ds is None:
            continue
        where = f" (split {splits.names[role]})" if role != "train" else ""
        if image:
            problem = image_problem(ds, d.image_column)
            if problem:
                found.append(ConfigIssue("data.image_column", d.image_column, problem + where))
                break
        elif text_column not in ds.column_names:
            found.append(
                ConfigIssue(
                    "text.text_column",
                    text_column,
                    f"no such column{where}; the data set has {', '.join(ds.column_names)}",
                )
            )
            break
    if len(splits.classes) < 2:
        found.append(
            ConfigIssue(label_field(image), label, f"{len(splits.classes)} class(es); need 2")
        )
    for key, names in (("data.classes", d.classes), ("data.exclude", d.exclude)):
        unknown = [c for c in names if c not in splits.classes]
        if unknown:
            found.append(
                ConfigIssue(
                    key, unknown, f"not in the data set (classes: {', '.join(splits.classes)})"
                )
            )
    return found


def label_field(image: bool) -> str:
    return "data.label_column" if image else "text.label_column"
