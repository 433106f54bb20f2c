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

from tuneterm.config import DataSection, DetectSection

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
def read_coco(d: DataSection, det: DetectSection) -> Parsed:
    path = Path(d.annotations).expanduser()
    root = Path(d.root).expanduser()
    out = Parsed(str(path))
    name = path.name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        out.issues.append(f"{path}: cannot read COCO JSON: {exc}")
        return out
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        out.issues.append(
            f"{path}: not COCO instances JSON (needs lists images, annotations, categories)"
        )
        return out
    cats: dict[Any, str] = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or "id" not in c or not isinstance(c.get("name"), str):
            out.issues.append(f"{name}: category {c!r} needs an id and a name")
            continue
        cats[c["id"]] = c["name"]
    names = sorted(set(cats.values()), key=list(cats.values()).index)
    keep = list(d.classes) or names
    missing = [c for c in keep if c not in names]
    if missing:
        out.issues.append(f"{name}: data.classes {missing} are not categories ({', '.join(names)})")
    label_of = {cid: keep.index(n) + 1 for cid, n in cats.items() if n in keep}
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
    per_image: dict[Any, tuple[list[list[float]], list[int]]] = {i: ([], []) for i in images}
    annotated: set[Any] = set()
    for a in doc["annotations"]:
        aid = a.get("id", "?") if isinstance(a, dict) else "?"
        if not isinstance(a, dict) or "image_id" not in a:
            out.issues.append(f"{name}: annotation id {aid}: needs an image_id")
            continue
        im = images.get(a["image_id"])
        if im is None:
            out.issues.append(
                f"{name}: annotation id {aid}: image {a['image_id']} is not in images"
            )
            continue
        where = f'{name}: annotation id {aid} (image {im["id"]} "{im["file_name"]}")'
        annotated.add(im["id"])  # a bad annotation is reported as itself, not as a missing one
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            out.issues.append(f"{where}: bbox {bbox!r} is not [x, y, width, height]")
            continue
        shown = "[" + ", ".join(_fmt(v) for v in bbox) + "]"
        if a.get("category_id") not in cats:
            out.issues.append(
                f"{where}: category_id {a.get('category_id')!r} is not in categories "
                f"(ids: {', '.join(str(c) for c in cats)})"
            )
            continue
        x, y, w, h = (float(v) for v in bbox)
        why = _box_issue(x, y, x + w, y + h, float(im["width"]), float(im["height"]))
        if why:
            out.issues.append(f"{where}: box {shown} {why}")
            continue
        if a.get("iscrowd") or a["category_id"] not in label_of:
            continue
        per_image[im["id"]][0].append([x, y, x + w, y + h])
        per_image[im["id"]][1].append(label_of[a["category_id"]])
    for iid, im in images.items():
        f = root / str(im["file_name"])
        if not f.is_file():
            out.issues.append(f'{name}: image {iid} "{im["file_name"]}": no file {f}')
            continue
        if iid not in annotated and det.empty_images == "error":
            out.issues.append(
                f'{name}: image {iid} "{im["file_name"]}" has no annotations; remove it, or set '
                'detect.empty_images = "keep" to train on it as a negative'
            )
            continue
        out.files.append(f)
        out.boxes.append(per_image[iid][0])
        out.labels.append(per_image[iid][1])
    out.classes = keep
    _check_usable(out)
    return out


# -- Pascal VOC ------------------------------------------------------------------------------
def _text(node: ET.Element | None, tag: str) -> str:
    child = node.find(tag) if node is not None else None
    return (child.text or "").strip() if child is not None else ""


def read_voc(d: DataSection, det: DetectSection) -> Parsed:
    """`root/Annotations/*.xml` with their images in `root/JPEGImages/`."""
    root = Path(d.root).expanduser()
    ann_dir = root / "Annotations"
    out = Parsed(str(ann_dir))
    xmls = sorted(ann_dir.glob("*.xml")) if ann_dir.is_dir() else []
    if not xmls:
        out.issues.append(f"{ann_dir}: no .xml files (expected root/Annotations/*.xml)")
        return out
    records = []
    for x in xmls:
        try:
            tree = ET.parse(x).getroot()
        except (ET.ParseError, OSError) as exc:
            out.issues.append(f"{x.name}: cannot parse XML: {exc}")
            continue
        records.append((x, tree))
    found = sorted({_text(o, "name") for _, t in records for o in t.iter("object")} - {""})
    classes = list(d.classes) or found
    missing = [c for c in classes if c not in found]
    if d.classes and missing:
        out.issues.append(
            f"{ann_dir}: data.classes {missing} never occur (found: {', '.join(found)})"
        )
    for x, tree in records:
        fname = _text(tree, "filename") or f"{x.stem}.jpg"
        size = tree.find("size")
        try:
            w, h = float(_text(size, "width")), float(_text(size, "height"))
        except ValueError:
            out.issues.append(f"{x.name}: <size> needs <width> and <height>")
            continue
        boxes: list[list[float]] = []
        labels: list[int] = []
        n_objects = 0
        for i, obj in enumerate(tree.iter("object")):
            n_objects += 1
            cls = _text(obj, "name")
            where = f'{x.name}: object {i} "{cls}"'
            bb = obj.find("bndbox")
            try:
                x0, y0, x1, y1 = (float(_text(bb, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError:
                out.issues.append(f"{where}: <bndbox> needs numeric xmin, ymin, xmax, ymax")
                continue
            shown = f"[{_fmt(x0)}, {_fmt(y0)}, {_fmt(x1)}, {_fmt(y1)}]"
            why = _box_issue(x0, y0, x1, y1, w, h)
            if why:
                out.issues.append(f"{where}: box {shown} {why}")
                continue
            if cls not in classes or _text(obj, "difficult") == "1":
                continue
            boxes.append([x0, y0, x1, y1])  # as given, like torchvision's VOC references
            labels.append(classes.index(cls) + 1)
        image = root / "JPEGImages" / fname
        if not image.is_file():
            out.issues.append(f'{x.name}: image "{fname}": no file {image}')
            continue
        if n_objects == 0 and det.empty_images == "error":
            out.issues.append(
                f'{x.name}: image "{fname}" has no annotations; remove it, or set '
                'detect.empty_images = "keep" to train on it as a negative'
            )
            continue
        out.files.append(image)
        out.boxes.append(boxes)
        out.labels.append(labels)
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
