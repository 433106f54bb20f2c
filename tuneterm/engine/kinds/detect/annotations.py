"""COCO JSON and Pascal VOC XML readers that check every annotation.

Each problem names the file and the annotation, e.g.
`instances.json: annotation id 17 (image 3 "a.jpg"): box [10, 10, 0, 5] has zero width`.
The checks run before a run is created (`tasks.detect.validate`), so bad data costs exit code
2 and nothing else. No torch here: plain Python over the parsed files.

- boxes with zero or negative width or height: an error;
- boxes outside the image (beyond `TOLERANCE` px): an error; they are never clipped silently;
- COCO category ids missing from the file's `categories` list: an error;
- annotations of images the file does not list, and image files that do not exist: errors;
- images without annotations: an error unless `detect.empty_images = "keep"`, which keeps
  them as negatives (images with no object);
- COCO `iscrowd = 1` regions and VOC `difficult` objects are left out of training and scoring.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.config import DataSection
from tuneterm.tasks.detect import DetectSection

TOLERANCE = 1.0  # px a box may reach beyond the image (rounding in annotation tools)
SHOWN = 8  # problems listed in one message


@dataclass
class Parsed:
    source: str
    classes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    boxes: list[list[list[float]]] = field(default_factory=list)  # xyxy per image
    labels: list[list[int]] = field(default_factory=list)  # 1..K per image
    issues: list[str] = field(default_factory=list)

    def message(self) -> str:
        shown = self.issues[:SHOWN]
        more = f"\n... and {len(self.issues) - SHOWN} more" if len(self.issues) > SHOWN else ""
        return "\n".join(shown) + more


def _fmt(v: float) -> str:
    return f"{v:g}"


def _box_issue(x0: float, y0: float, x1: float, y1: float, w: float, h: float) -> str | None:
    """Why an xyxy box in an image of w x h px is unusable, or None."""
    bw, bh = x1 - x0, y1 - y0
    if bw == 0 or bh == 0:
        return f"has zero {'width' if bw == 0 else 'height'}"
    if bw < 0 or bh < 0:
        return f"has negative {'width' if bw < 0 else 'height'}"
    if x0 < -TOLERANCE or y0 < -TOLERANCE or x1 > w + TOLERANCE or y1 > h + TOLERANCE:
        return f"lies outside the {_fmt(w)}x{_fmt(h)} image"
    return None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# -- COCO ------------------------------------------------------------------------------------
def _coco_doc(path: Path, out: Parsed) -> dict[str, Any] | None:
    """The parsed instances file, or None with the issue recorded."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        out.issues.append(f"{path}: cannot read COCO JSON: {exc}")
        return None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        out.issues.append(
            f"{path}: not COCO instances JSON (needs lists images, annotations, categories)"
        )
        return None
    return doc


def _coco_categories(doc: dict[str, Any], name: str, out: Parsed) -> dict[Any, str]:
    """{category id: name} of the well-formed categories."""
    cats: dict[Any, str] = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or "id" not in c or not isinstance(c.get("name"), str):
            out.issues.append(f"{name}: category {c!r} needs an id and a name")
            continue
        cats[c["id"]] = c["name"]
    return cats


def _coco_images(doc: dict[str, Any], name: str, out: Parsed) -> dict[Any, dict[str, Any]]:
    """{image id: image record} of the images with an id, a file name and a size."""
    images: dict[Any, dict[str, Any]] = {}
    for im in doc["images"]:
        if not isinstance(im, dict) or not all(k in im for k in ("id", "file_name")):
            out.issues.append(f"{name}: image {im!r} needs an id and a file_name")
            continue
        if not (_number(im.get("width")) and _number(im.get("height"))):
            out.issues.append(
                f'{name}: image {im["id"]} "{im["file_name"]}" needs width and height'
            )
            continue
        images[im["id"]] = im
    return images


@dataclass
class _Coco:
    """One COCO file being read: its categories and images, and the boxes found so far."""

    name: str
    cats: dict[Any, str]
    label_of: dict[Any, int]  # category id -> label 1..K, for the kept classes
    images: dict[Any, dict[str, Any]]
    out: Parsed
    annotated: set[Any] = field(default_factory=set)
    per_image: dict[Any, tuple[list[list[float]], list[int]]] = field(default_factory=dict)

    def image_of(self, a: Any) -> dict[str, Any] | None:
        """The image an annotation belongs to, or None with the issue recorded."""
        aid = a.get("id", "?") if isinstance(a, dict) else "?"
        if not isinstance(a, dict) or "image_id" not in a:
            self.out.issues.append(f"{self.name}: annotation id {aid}: needs an image_id")
            return None
        im = self.images.get(a["image_id"])
        if im is None:
            self.out.issues.append(
                f"{self.name}: annotation id {aid}: image {a['image_id']} is not in images"
            )
        return im

    def bad_category(self, a: dict[str, Any]) -> str | None:
        if a.get("category_id") in self.cats:
            return None
        return (
            f"category_id {a.get('category_id')!r} is not in categories "
            f"(ids: {', '.join(str(c) for c in self.cats)})"
        )

    def add(self, a: Any) -> None:
        """One annotation: a checked box for its image, or an issue naming it."""
        im = self.image_of(a)
        if im is None:
            return
        where = (
            f'{self.name}: annotation id {a.get("id", "?")} (image {im["id"]} "{im["file_name"]}")'
        )
        self.annotated.add(im["id"])  # a bad annotation is reported as itself, not as missing
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            self.out.issues.append(f"{where}: bbox {bbox!r} is not [x, y, width, height]")
            return
        bad = self.bad_category(a)
        if bad:
            self.out.issues.append(f"{where}: {bad}")
            return
        x, y, w, h = (float(v) for v in bbox)
        why = _box_issue(x, y, x + w, y + h, float(im["width"]), float(im["height"]))
        if why:
            shown = "[" + ", ".join(_fmt(v) for v in bbox) + "]"
            self.out.issues.append(f"{where}: box {shown} {why}")
            return
        if a.get("iscrowd") or a["category_id"] not in self.label_of:
            return
        boxes, labels = self.per_image.setdefault(im["id"], ([], []))
        boxes.append([x, y, x + w, y + h])
        labels.append(self.label_of[a["category_id"]])

    def collect(self, root: Path, det: DetectSection) -> None:
        """Every image with its file present, and annotated unless empty images are kept."""
        for iid, im in self.images.items():
            f = root / str(im["file_name"])
            if not f.is_file():
                self.out.issues.append(f'{self.name}: image {iid} "{im["file_name"]}": no file {f}')
                continue
            if iid not in self.annotated and det.empty_images == "error":
                self.out.issues.append(
                    f'{self.name}: image {iid} "{im["file_name"]}" has no annotations; '
                    'remove it, or set detect.empty_images = "keep" to train on it as a negative'
                )
                continue
            boxes, labels = self.per_image.get(iid, ([], []))
            self.out.files.append(f)
            self.out.boxes.append(boxes)
            self.out.labels.append(labels)


def read_coco(d: DataSection, det: DetectSection) -> Parsed:
    """The COCO instances file `data.annotations`, its images under `data.root`."""
    path = Path(d.annotations).expanduser()
    out = Parsed(str(path))
    doc = _coco_doc(path, out)
    if doc is None:
        return out
    cats = _coco_categories(doc, path.name, out)
    names = sorted(set(cats.values()), key=list(cats.values()).index)
    keep = list(d.classes) or names
    missing = [c for c in keep if c not in names]
    if missing:
        out.issues.append(
            f"{path.name}: data.classes {missing} are not categories ({', '.join(names)})"
        )
    label_of = {cid: keep.index(n) + 1 for cid, n in cats.items() if n in keep}
    coco = _Coco(path.name, cats, label_of, _coco_images(doc, path.name, out), out)
    for a in doc["annotations"]:
        coco.add(a)
    coco.collect(Path(d.root).expanduser(), det)
    out.classes = keep
    _check_usable(out)
    return out


# -- Pascal VOC ------------------------------------------------------------------------------
def _text(node: ET.Element | None, tag: str) -> str:
    child = node.find(tag) if node is not None else None
    return (child.text or "").strip() if child is not None else ""


def _voc_records(xmls: list[Path], out: Parsed) -> list[tuple[Path, ET.Element]]:
    """(file, parsed root) of each annotation file that parses."""
    records = []
    for x in xmls:
        try:
            tree = ET.parse(x).getroot()
        except (ET.ParseError, OSError) as exc:
            out.issues.append(f"{x.name}: cannot parse XML: {exc}")
            continue
        records.append((x, tree))
    return records


def _voc_classes(
    d: DataSection, records: list[tuple[Path, ET.Element]], ann_dir: Path, out: Parsed
) -> list[str]:
    """data.classes, or every object name found, sorted."""
    found = sorted({_text(o, "name") for _, t in records for o in t.iter("object")} - {""})
    classes = list(d.classes) or found
    missing = [c for c in classes if c not in found]
    if d.classes and missing:
        out.issues.append(
            f"{ann_dir}: data.classes {missing} never occur (found: {', '.join(found)})"
        )
    return classes


def _voc_box(x: Path, i: int, obj: ET.Element, w: float, h: float, out: Parsed) -> list[float]:
    """One object's checked xyxy box, or [] with the issue recorded."""
    where = f'{x.name}: object {i} "{_text(obj, "name")}"'
    bb = obj.find("bndbox")
    try:
        x0, y0, x1, y1 = (float(_text(bb, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
    except ValueError:
        out.issues.append(f"{where}: <bndbox> needs numeric xmin, ymin, xmax, ymax")
        return []
    why = _box_issue(x0, y0, x1, y1, w, h)
    if why:
        shown = f"[{_fmt(x0)}, {_fmt(y0)}, {_fmt(x1)}, {_fmt(y1)}]"
        out.issues.append(f"{where}: box {shown} {why}")
        return []
    return [x0, y0, x1, y1]  # as given, like torchvision's VOC references


def _voc_objects(
    x: Path, tree: ET.Element, classes: list[str], size: tuple[float, float], out: Parsed
) -> tuple[list[list[float]], list[int], int]:
    """(boxes, labels, objects in the file) of one annotation file."""
    boxes: list[list[float]] = []
    labels: list[int] = []
    n_objects = 0
    for i, obj in enumerate(tree.iter("object")):
        n_objects += 1
        box = _voc_box(x, i, obj, *size, out)
        cls = _text(obj, "name")
        if not box or cls not in classes or _text(obj, "difficult") == "1":
            continue
        boxes.append(box)
        labels.append(classes.index(cls) + 1)
    return boxes, labels, n_objects


def _voc_image(
    root: Path, x: Path, tree: ET.Element, classes: list[str], det: DetectSection, out: Parsed
) -> None:
    """One annotation file's image, boxes and labels into `out`, or its issues."""
    fname = _text(tree, "filename") or f"{x.stem}.jpg"
    size = tree.find("size")
    try:
        w, h = float(_text(size, "width")), float(_text(size, "height"))
    except ValueError:
        out.issues.append(f"{x.name}: <size> needs <width> and <height>")
        return
    boxes, labels, n_objects = _voc_objects(x, tree, classes, (w, h), out)
    image = root / "JPEGImages" / fname
    if not image.is_file():
        out.issues.append(f'{x.name}: image "{fname}": no file {image}')
        return
    if n_objects == 0 and det.empty_images == "error":
        out.issues.append(
            f'{x.name}: image "{fname}" has no annotations; remove it, or set '
            'detect.empty_images = "keep" to train on it as a negative'
        )
        return
    out.files.append(image)
    out.boxes.append(boxes)
    out.labels.append(labels)


def read_voc(d: DataSection, det: DetectSection) -> Parsed:
    """`root/Annotations/*.xml` with their images in `root/JPEGImages/`."""
    root = Path(d.root).expanduser()
    ann_dir = root / "Annotations"
    out = Parsed(str(ann_dir))
    xmls = sorted(ann_dir.glob("*.xml")) if ann_dir.is_dir() else []
    if not xmls:
        out.issues.append(f"{ann_dir}: no .xml files (expected root/Annotations/*.xml)")
        return out
    records = _voc_records(xmls, out)
    classes = _voc_classes(d, records, ann_dir, out)
    for x, tree in records:
        _voc_image(root, x, tree, classes, det, out)
    out.classes = classes
    _check_usable(out)
    return out


def _check_usable(p: Parsed) -> None:
    if p.issues:
        return
    if not p.classes:
        p.issues.append(f"{p.source}: no categories")
    elif len(p.files) < 3:
        p.issues.append(f"{p.source}: {len(p.files)} usable image(s); need at least 3 to split")
