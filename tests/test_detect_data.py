"""Detection data: COCO/VOC readers and their checks (each bad annotation named with its file),
the embedded canvases, box-aware augmentation, and the config rules of the detect kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import Cli
from PIL import Image

from tuneterm.config import ConfigError, DataSection, RunConfig, loads
from tuneterm.engine.kinds.detect.annotations import read_coco, read_voc
from tuneterm.tasks.detect import DetectSection


def _images(folder: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", size, (90, 40, 200)).save(folder / name)


def _coco(tmp_path: Path, annotations: list[dict[str, Any]], n_images: int = 4) -> DataSection:
    names = [f"im{i}.png" for i in range(n_images)]
    _images(tmp_path / "images", names)
    doc = {
        "images": [
            {"id": i + 1, "file_name": n, "width": 40, "height": 30} for i, n in enumerate(names)
        ],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return DataSection(dataset="coco", root=str(tmp_path / "images"), annotations=str(path))


def _ann(aid: int, image: int, bbox: list[float], cat: int = 1) -> dict[str, Any]:
    return {"id": aid, "image_id": image, "category_id": cat, "bbox": bbox, "iscrowd": 0}


GOOD = [_ann(1, 1, [2, 3, 10, 8]), _ann(2, 2, [0, 0, 40, 30], 7), _ann(3, 3, [5, 5, 5, 5])]


def test_coco_reads_boxes_as_xyxy_with_labels_by_category(tmp_path: Path) -> None:
    parsed = read_coco(_coco(tmp_path, [*GOOD, _ann(4, 4, [1, 1, 3, 3], 7)]), DetectSection())
    assert parsed.issues == [] and parsed.classes == ["cat", "dog"]
    assert parsed.boxes[0] == [[2.0, 3.0, 12.0, 11.0]] and parsed.labels[:2] == [[1], [2]]


def test_coco_bad_annotations_are_each_named(tmp_path: Path) -> None:
    bad = [
        _ann(17, 1, [10, 10, 0, 5]),
        _ann(18, 2, [10, 10, 5, -4]),
        _ann(19, 3, [30, 20, 20, 5]),
        _ann(20, 3, [1, 1, 2, 2], cat=3),
    ]
    parsed = read_coco(
        _coco(tmp_path, [*bad, _ann(21, 4, [1, 1, 2, 2])], n_images=5), DetectSection()
    )
    text = parsed.message()
    assert (
        'instances.json: annotation id 17 (image 1 "im0.png"): box [10, 10, 0, 5] has zero width'
        in text
    )
    assert 'annotation id 18 (image 2 "im1.png"): box [10, 10, 5, -4] has negative height' in text
    assert (
        'annotation id 19 (image 3 "im2.png"): box [30, 20, 20, 5] lies outside the 40x30 image'
        in text
    )
    assert (
        'annotation id 20 (image 3 "im2.png"): category_id 3 is not in categories (ids: 1, 7)'
        in text
    )
    assert 'image 5 "im4.png" has no annotations' in text and "detect.empty_images" in text
    assert len(parsed.issues) == 5


def test_images_without_annotations_kept_as_negatives_when_asked(tmp_path: Path) -> None:
    data = _coco(tmp_path, GOOD)  # im3.png has no annotation
    assert "has no annotations" in read_coco(data, DetectSection()).message()
    parsed = read_coco(data, DetectSection(empty_images="keep"))
    assert parsed.issues == [] and len(parsed.files) == 4 and parsed.boxes[3] == []


def _voc(root: Path, name: str, objects: list[tuple[str, list[int]]], size: str = "40 30") -> None:
    w, h = size.split()
    objs = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{name}.xml").write_text(
        f"<annotation><filename>{name}.jpg</filename><size><width>{w}</width>"
        f"<height>{h}</height></size>{objs}</annotation>"
    )
    _images(root / "JPEGImages", [f"{name}.jpg"])


def test_voc_reads_and_names_bad_objects(tmp_path: Path) -> None:
    good = tmp_path / "good"
    for i in range(3):
        _voc(good, f"a{i}", [("dog", [1, 1, 10, 10]), ("cat", [5, 5, 40, 30])])
    parsed = read_voc(DataSection(dataset="voc", root=str(good)), DetectSection())
    assert parsed.issues == [] and parsed.classes == ["cat", "dog"]
    assert parsed.boxes[0] == [[1.0, 1.0, 10.0, 10.0], [5.0, 5.0, 40.0, 30.0]]
    assert parsed.labels[0] == [2, 1]
    bad = tmp_path / "bad"
    _voc(bad, "b0", [("dog", [10, 10, 10, 20])])
    _voc(bad, "b1", [("dog", [1, 1, 10, 10]), ("cat", [20, 5, 60, 25])])
    _voc(bad, "b2", [])
    text = read_voc(DataSection(dataset="voc", root=str(bad)), DetectSection()).message()
    assert 'b0.xml: object 0 "dog": box [10, 10, 10, 20] has zero width' in text
    assert 'b1.xml: object 1 "cat": box [20, 5, 60, 25] lies outside the 40x30 image' in text
    assert 'b2.xml: image "b2.jpg" has no annotations' in text


def test_detect_config_rules() -> None:
    with pytest.raises(ConfigError, match=r'data.dataset = "digits": not a detection data set'):
        loads('[run]\ntask = "detect"')
    with pytest.raises(ConfigError, match=r'train.metric = "val_map": mAP is for detect runs'):
        loads('[train]\nmetric = "val_map"')
    with pytest.raises(
        ConfigError, match=r"data.annotations = \"\": required when data.dataset = coco"
    ):
        loads('[run]\ntask = "detect"\n[data]\ndataset = "coco"\nroot = "."')
    cfg = loads('[run]\ntask = "detect"\n[data]\ndataset = "shapes-boxes"')
    assert DetectSection.of(cfg).empty_images == "error"


def test_embedded_canvases_and_boxes_move_with_the_image() -> None:
    import torch
    from torchvision.transforms import v2

    from tuneterm.engine.kinds.detect.data import _Images, build, generate, make_transform

    split = generate("shapes-boxes", ["ring", "bar"], DetectSection(canvas=64, images=20), 3)
    assert split.images is not None and split.images[0].shape == (3, 64, 64)
    for boxes, labels in zip(split.boxes, split.labels, strict=True):
        assert len(boxes) == len(labels) >= 1 and set(labels.tolist()) <= {1, 2}
        assert (boxes[:, 2:] > boxes[:, :2]).all() and (boxes >= 0).all() and (boxes <= 64).all()
    flipped = _Images(split, v2.RandomHorizontalFlip(1.0))[0]
    img, target = flipped
    want = split.boxes[0].clone()
    want[:, [0, 2]] = 64 - split.boxes[0][:, [2, 0]]
    assert torch.equal(img, split.images[0].flip(-1)) and torch.allclose(target["boxes"], want)
    torch.manual_seed(0)
    light = _Images(split, make_transform("light"))  # flip, colour, zoom-out, sanitize
    for i in range(len(split)):
        img, target = light[i]
        h, w = img.shape[-2:]
        boxes = target["boxes"]
        assert len(boxes) == len(target["labels"]) and (boxes[:, 2:] > boxes[:, :2]).all()
        assert (boxes[:, [0, 2]] <= w).all() and (boxes[:, [1, 3]] <= h).all()
    data = build(
        DataSection(dataset="digits-boxes", classes=["3", "7"]), DetectSection(images=20), 0
    )
    assert data.classes == ["3", "7"] and data.counts["train"] + data.counts["val"] == 16


def test_bad_annotations_exit_2_and_create_nothing(tmp_path: Path, cli: Cli) -> None:
    data = _coco(tmp_path, [*GOOD, _ann(17, 4, [10, 10, 0, 5])])
    config = tmp_path / "det.toml"
    config.write_text(
        '[run]\ntask = "detect"\n[model]\nname = "ssdlite320_mobilenet_v3_large"\n'
        f'weights = "none"\n[data]\ndataset = "coco"\nroot = "{data.root}"\n'
        f'annotations = "{data.annotations}"\n'
    )
    proc = cli("run", str(config), check=2)
    assert (
        'instances.json: annotation id 17 (image 4 "im3.png"): box [10, 10, 0, 5] has zero width'
        in proc.stderr
    )
    assert list(cli.runs.iterdir()) == []


class _StopAfter:
    """The loop's RunContext: a real checkpoint folder, events kept, a stop after N steps."""

    def __init__(self, ckpt_dir: Path, steps: int) -> None:
        self.ckpt_dir, self.steps, self.events = ckpt_dir, steps, []  # type: ignore[var-annotated]
        self.step = 0

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.events.append((kind, fields))
        if kind == "train":
            self.step = fields["step"]

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return 0 < self.steps <= self.step


def test_stop_mid_epoch_then_resume_completes(tmp_path: Path) -> None:
    import torch

    from tuneterm.engine.kinds.detect.data import build
    from tuneterm.engine.kinds.detect.models import build_detector
    from tuneterm.engine.kinds.detect.task import trainer as DetTrainer

    cfg = loads(
        '[run]\ntask = "detect"\n[model]\nname = "ssdlite320_mobilenet_v3_large"\n'
        'weights = "none"\n[data]\ndataset = "shapes-boxes"\nclasses = ["circle", "bar"]\n'
        "[train]\nepochs = 2\nbatch_size = 4\nlog_every = 1\nthreads = 1\n"
        "[detect]\ncanvas = 64\nmin_size = 64\nimages = 20\n"
    )
    torch.set_num_threads(1)
    data = build(cfg.data, DetectSection.of(cfg), 0)
    first = DetTrainer(cfg, build_detector(cfg, 2, None).model, data, _StopAfter(tmp_path, 2))
    assert first.steps_per_epoch == 3 and first.fit() == "stopped"
    assert (tmp_path / "last.pt").is_file() and not (tmp_path / "best.pt").exists()
    ctx = _StopAfter(tmp_path, 0)
    second = DetTrainer(cfg, build_detector(cfg, 2, None).model, data, ctx)
    second.restore(tmp_path / "last.pt")
    assert (second.state.epoch, second.state.batch, second.state.step) == (0, 2, 2)
    assert torch.equal(
        next(iter(second.model.state_dict().values())),
        next(iter(first.model.state_dict().values())),
    )
    assert second.fit() == "completed" and second.state.step == 6
    steps = [f["step"] for k, f in ctx.events if k == "train"]
    assert steps == [3, 4, 5, 6]  # the rest of epoch 1, then epoch 2: no step done twice
    assert [f["epoch"] for k, f in ctx.events if k == "val"] == [1, 2]
    result = second.test()
    assert result["split"] == "test" and 0.0 <= result["map"] <= result["map50"] <= 1.0


def _refusal(cfg: RunConfig) -> str:
    """The error text the detect kind's launch check gives for `cfg` (it must refuse it)."""
    from tuneterm.engine.kinds.detect import validate

    with pytest.raises(ConfigError) as err:
        validate(cfg, None)
    return str(err.value)


def test_detect_refuses_what_it_would_ignore() -> None:
    from tuneterm.engine.kinds.detect import validate

    cfg = loads(
        '[run]\ntask = "detect"\n[model]\nname = "ssdlite320_mobilenet_v3_large"\n'
        'weights = "none"\n[data]\ndataset = "shapes-boxes"\nclasses = ["circle", "blob"]\n'
        'augment = "randaugment"\nper_class = 5\n[ema]\nenabled = true\n'
    )
    text = _refusal(cfg)
    assert 'data.augment = "randaugment": detect runs take none, light' in text
    assert "data.per_class = 5: not used by detect runs" in text
    assert "ema.enabled = true: not used by detect runs" in text
    assert "data.classes = ['circle', 'blob']: ['blob'] not in circle, square" in text
    with pytest.raises(ConfigError, match=r'model.name = "resnet18": not a detection model'):
        validate(
            cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": "resnet18"})}),
            None,
        )


def test_coco_weights_offline_name_the_file_to_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNETERM_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    cfg = loads(
        '[run]\ntask = "detect"\n[model]\nname = "fasterrcnn_mobilenet_v3_large_320_fpn"\n'
        '[data]\ndataset = "shapes-boxes"\n'
    )
    text = _refusal(cfg)
    assert 'model.weights = "DEFAULT": pretrained weights ' in text
    assert "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1 are not cached" in text
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in text


def test_models_lists_the_detectors_a_detect_run_accepts(cli: Cli) -> None:
    import torchvision

    proc = cli("models", "--task", "detect", "--json", check=0)
    names = json.loads(proc.stdout)
    assert "ssdlite320_mobilenet_v3_large" in names and "fasterrcnn_resnet50_fpn" in names
    assert "resnet18" not in names
    for name in names:  # each one a torchvision detection builder
        assert callable(getattr(torchvision.models.detection, name)), name
