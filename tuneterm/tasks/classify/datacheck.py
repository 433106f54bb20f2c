"""A fast scan of the image data a classify config names, run before anything is created
(by the kind's launch checks, tuneterm/engine/kinds/classify).

Everything that can be found without training is found here, so a bad folder costs exit code 2
and no run folder: missing or empty class folders, folders with no images, a single class,
train/val/test with different classes, image files that do not decode, `data.classes` and
`data.relabel` naming classes the data set does not have.

Images are decoded in full (not only `Image.verify()`, which lets truncated JPEGs through) when
a folder holds at most `FULL_CHECK` of them; larger folders are checked on a seeded sample of
`SAMPLE` images, and the message says so. The rest are checked as the engine loads them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from tuneterm.config import ConfigIssue, RunConfig

FULL_CHECK = 5000
SAMPLE = 1000
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass
class FolderScan:
    """One ImageFolder-style tree: class names and the image files of each."""

    path: Path
    classes: list[str] = field(default_factory=list)
    files: dict[str, list[Path]] = field(default_factory=dict)
    other: dict[str, list[str]] = field(default_factory=dict)  # non-image files per class


def scan(folder: Path) -> FolderScan:
    out = FolderScan(folder)
    out.classes = sorted(
        p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    for cls in out.classes:
        found: list[Path] = []
        other: list[Path] = []
        for p in sorted((folder / cls).rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            (found if p.suffix.lower() in IMAGE_EXTS else other).append(p)
        out.files[cls] = found
        out.other[cls] = [p.name for p in other]
    return out


def _undecodable(path: Path) -> str | None:
    """Why `path` cannot be used as an image, or None if it decodes."""
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(path) as img:
            img.load()  # a full decode: verify() alone passes truncated JPEGs
            img.convert("RGB")
    except Exception as exc:  # PIL raises many types for bad files
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def _check_images(scans: list[FolderScan], issues: list[ConfigIssue], root: str) -> None:
    files = [f for s in scans for cls in s.classes for f in s.files[cls]]
    checked, how = files, "all"
    if len(files) > FULL_CHECK:
        checked = random.Random(0).sample(files, SAMPLE)
        how = f"a sample of {SAMPLE:,} of {len(files):,}"
    bad = [(f, why) for f in checked if (why := _undecodable(f)) is not None]
    if bad:
        shown = "; ".join(f"{f} ({why})" for f, why in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        issues.append(
            ConfigIssue(
                "data.root",
                root,
                f"{len(bad)} image file(s) cannot be decoded (checked {how} images): "
                f"{shown}{more}; remove or replace them",
            )
        )


def _check_class_folders(s: FolderScan, root_text: str, issues: list[ConfigIssue]) -> bool:
    """Class folders, each holding images; False when there are no class folders at all."""
    if not s.classes:
        issues.append(
            ConfigIssue(
                "data.root",
                root_text,
                f"{s.path} has no class folders (expected {s.path}/<class>/<image>)",
            )
        )
        return False
    for cls in s.classes:
        if not s.files[cls]:
            found = s.other[cls]
            names = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
            what = f"only non-image files ({names})" if found else "nothing"
            issues.append(
                ConfigIssue(
                    "data.root",
                    root_text,
                    f"class folder {s.path / cls} has no images: it holds {what}; "
                    f"image types read: {', '.join(sorted(IMAGE_EXTS))}",
                )
            )
    return True


def _check_same_classes(scans: list[FolderScan], root_text: str, issues: list[ConfigIssue]) -> None:
    """At least two classes in train/, and the same ones in val/ and test/."""
    train = scans[0]
    if len(train.classes) == 1:
        issues.append(
            ConfigIssue(
                "data.root",
                root_text,
                f"{train.path} has a single class ({train.classes[0]}); "
                "classification needs at least 2 class folders",
            )
        )
    for s in scans[1:]:
        if s.classes != train.classes:
            only_s = sorted(set(s.classes) - set(train.classes))
            only_t = sorted(set(train.classes) - set(s.classes))
            issues.append(
                ConfigIssue(
                    "data.root",
                    root_text,
                    f"{s.path.name}/ and train/ have different classes "
                    f"(only in {s.path.name}/: {only_s or '-'}; only in train/: {only_t or '-'}); "
                    "give every split the same class folders",
                )
            )


def _check_folder(cfg: RunConfig, issues: list[ConfigIssue]) -> list[str]:
    root_text = cfg.data.root
    root = Path(root_text).expanduser()
    if not root.is_dir():
        return []  # the schema already reported it
    splits = [n for n in ("train", "val", "test") if (root / n).is_dir()]
    scans = [scan(root / n) for n in splits] if "train" in splits else [scan(root)]
    if splits and "train" not in splits:
        issues.append(
            ConfigIssue("data.root", root_text, f"has {'/'.join(splits)}/ but no train/ folder")
        )
        return []
    for s in scans:
        if not _check_class_folders(s, root_text, issues):
            return []
    _check_same_classes(scans, root_text, issues)
    if not issues:
        _check_images(scans, issues, root_text)
    return scans[0].classes


def _check_names(cfg: RunConfig, classes: list[str], issues: list[ConfigIssue]) -> None:
    d = cfg.data
    unknown = [c for c in d.classes if c not in classes]
    if unknown:
        issues.append(
            ConfigIssue(
                "data.classes",
                d.classes,
                f"{unknown} not in the data set (classes: {', '.join(classes)})",
            )
        )
    chosen = d.classes or classes
    if len(chosen) == 1 and not d.relabel:
        issues.append(
            ConfigIssue("data.classes", d.classes, "a single class; classification needs 2")
        )
    for name, olds in d.relabel.items():
        missing = [o for o in olds if o not in chosen]
        if missing:
            issues.append(
                ConfigIssue(
                    f"data.relabel.{name}",
                    olds,
                    f"{missing} not in the data set's classes ({', '.join(chosen)})",
                )
            )
    if d.relabel and len(d.relabel) < 2:
        issues.append(ConfigIssue("data.relabel", d.relabel, "makes a single class; need 2"))


def check(cfg: RunConfig) -> list[ConfigIssue]:
    """Every data problem findable before launch, each naming the field, value and fix."""
    issues: list[ConfigIssue] = []
    if cfg.data.dataset == "folder":
        classes = _check_folder(cfg, issues)
    elif cfg.data.dataset == "hf":
        from tuneterm.config import hfdata

        return hfdata.issues(cfg, image=True)
    else:
        from tuneterm.tasks.classify import EMBEDDED

        classes = list(EMBEDDED.get(cfg.data.dataset, ()))
    if classes and not issues:
        _check_names(cfg, classes, issues)
    _check_target(cfg, issues)
    return issues


def _check_target(cfg: RunConfig, issues: list[ConfigIssue]) -> None:
    """adapt.target_root: a flat folder of images, or class folders holding images."""
    root = Path(cfg.adapt.target_root).expanduser()
    if not cfg.adapt.target_root or not root.is_dir():
        return  # unset, or already refused by the config checks
    flat = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    found = scan(root)
    empty = [c for c in found.classes if not found.files[c]]
    if not flat and not found.classes:
        why = f"no images ({', '.join(sorted(IMAGE_EXTS))}) and no class folders"
    elif empty:
        why = f"class folder {empty[0]} has no images"
    else:
        return
    issues.append(ConfigIssue("adapt.target_root", cfg.adapt.target_root, why))
