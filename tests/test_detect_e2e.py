"""Detect runs end to end: a real `tuneterm run` of a tiny detector (subprocess engine) on the
embedded shapes canvases, then predict, export-model (TorchScript + ONNX, loaded and run) and
the TUI on the same run. One run is shared by the module's tests to keep CI time small."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import Cli, kill_engines_under
from helpers.fake_store import new_app, pilot, screen_text, until

from tuneterm.runs.export import export_model
from tuneterm.runs.predict import PredictError, PredictInput, predict
from tuneterm.store import RunStore
from tuneterm.tasks import metric_spec_of_run

DETECT = """\
[run]
name = "det"
task = "detect"

[model]
name = "ssdlite320_mobilenet_v3_large"
weights = "none"

[data]
dataset = "shapes-boxes"
classes = ["circle", "square"]

[train]
epochs = 2
batch_size = 8
lr = 0.003
log_every = 2
threads = 1

[detect]
canvas = 64
min_size = 64
images = 30
"""


@pytest.fixture(scope="module")
def det_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, str, Path]]:
    root = tmp_path_factory.mktemp("detect")
    runs = root / "runs"
    runs.mkdir()
    (root / "det.toml").write_text(DETECT)
    cli = Cli(runs)
    try:
        proc = cli("run", str(root / "det.toml"), "--json", timeout=240)
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
        yield cli, json.loads(proc.stdout)["id"], root
    finally:
        kill_engines_under(runs)


def _image(root: Path) -> Path:
    """A canvas like the training ones, as a PNG file."""
    from PIL import Image

    from tuneterm.engine.kinds.detect.data import generate
    from tuneterm.tasks.detect import DetectSection

    split = generate("shapes-boxes", ["circle", "square"], DetectSection(canvas=64, images=10), 7)
    assert split.images is not None
    path = root / "canvas.png"
    Image.fromarray(split.images[0].permute(1, 2, 0).numpy()).save(path)
    return path


def test_detect_run_completes_with_map_events(det_run: tuple[Cli, str, Path]) -> None:
    cli, run_id, _ = det_run
    shown = cli.json("show", run_id)
    assert shown["status"] == "completed" and shown["task"] == "detect"
    meta = shown["meta"]
    assert meta["best"]["metric"] == "val_map" and meta["classes"] == ["circle", "square"]
    final = meta["final"]
    assert {"test_map", "test_map50", "test_map75", "per_class", "best_epoch"} <= set(final)
    assert 0.0 <= final["test_map"] <= final["test_map50"] <= 1.0
    assert set(final["per_class"]) <= {"circle", "square"}
    events = [
        json.loads(line) for line in cli("events", run_id, "--json", check=0).stdout.splitlines()
    ]
    vals = [e for e in events if e["kind"] == "val"]
    assert [v["epoch"] for v in vals] == [1, 2]
    assert all(0.0 <= v["val_map"] <= v["val_map50"] <= 1.0 for v in vals)
    test = [e for e in events if e["kind"] == "test"]
    assert len(test) == 1 and test[0]["map50"] == final["test_map50"]
    assert shown["checkpoints"] == ["best.pt", "last.pt"]


def _in_process(run_dir: Path, image: Path) -> dict[str, Any]:
    import torch

    from tuneterm.engine.kinds.detect.data import read_image
    from tuneterm.engine.kinds.detect.models import from_checkpoint

    model, _ = from_checkpoint(run_dir / "checkpoints" / "best.pt")
    with torch.no_grad():
        out: dict[str, Any] = model([read_image(image).float() / 255])[0]
    return out


def test_predict_writes_boxes_labels_scores(det_run: tuple[Cli, str, Path]) -> None:
    cli, run_id, root = det_run
    image = _image(root)
    proc = cli("predict", run_id, str(image), "--threshold", "0", check=0)
    data = json.loads(proc.stdout)
    assert data["task"] == "detect" and data["run"] == run_id
    (pred,) = data["predictions"]
    assert pred["image"] == str(image) and (pred["width"], pred["height"]) == (64, 64)
    ref = _in_process(cli.runs / run_id, image)
    assert len(pred["detections"]) == len(ref["scores"]) > 0
    top = pred["detections"][0]
    assert top["label"] in ("circle", "square") and top["class_id"] in (1, 2)
    assert top["score"] == pytest.approx(float(ref["scores"][0]), abs=1e-5)
    assert top["box"] == pytest.approx(ref["boxes"][0].tolist(), abs=0.01)
    # in-process, the same function: a threshold above every score keeps no box; a missing
    # file is named (the CLI turns PredictError into exit code 2)
    store = RunStore(cli.runs)
    high = predict(store, run_id, PredictInput(images=[image], score_threshold=1.0))
    assert high["predictions"][0]["detections"] == []
    with pytest.raises(PredictError, match=r"nope.png: no such image file"):
        predict(store, run_id, PredictInput(images=[root / "nope.png"]))


def test_export_torchscript_and_onnx_load_and_predict(det_run: tuple[Cli, str, Path]) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from tuneterm.engine.kinds.detect.data import read_image
    from tuneterm.runs.export import read_metadata

    cli, run_id, root = det_run
    image = _image(root)
    ref = _in_process(cli.runs / run_id, image)
    x = read_image(image).float() / 255
    ts_path, onnx_path = root / "det.pt", root / "det.onnx"
    done = cli.json("export-model", run_id, "--format", "torchscript", "--out", str(ts_path))
    assert done["path"] == str(ts_path) and done["metadata"]["classes"] == ["circle", "square"]
    export_model(RunStore(cli.runs), run_id, "onnx", onnx_path)  # what the CLI calls
    for path in (ts_path, onnx_path):
        meta = read_metadata(path)
        assert meta["task"] == "detect" and meta["classes"] == ["circle", "square"]
        assert meta["min_size"] == 64 and len(meta["mean"]) == 3 and meta["run"] == run_id
    scripted = torch.jit.load(str(ts_path))
    with torch.no_grad():
        boxes, labels, scores = scripted(x)
    assert torch.allclose(scores, ref["scores"], atol=1e-5)
    assert torch.allclose(boxes, ref["boxes"], atol=1e-3) and torch.equal(labels, ref["labels"])
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    o_boxes, o_labels, o_scores = sess.run(None, {"image": x.numpy()})
    n = min(10, len(ref["scores"]))  # the best boxes agree; NMS ties far down may differ
    assert np.allclose(o_scores[:n], ref["scores"][:n].numpy(), atol=1e-4)
    # Boxes of equal score may come in either order: compare them in one canonical order
    ours = _canonical(o_scores[:n], o_boxes[:n], o_labels[:n])
    theirs = _canonical(ref["scores"][:n].numpy(), ref["boxes"][:n].numpy(), ref["labels"][:n])
    assert np.allclose(ours[:, :5], theirs[:, :5], atol=1e-2) and (ours[:, 5] == theirs[:, 5]).all()


def _canonical(scores: Any, boxes: Any, labels: Any) -> Any:
    """Rows (score, x1, y1, x2, y2, label) sorted by score, then box: ties in a fixed order."""
    import numpy as np

    rows = np.column_stack([np.round(scores, 3), boxes, np.asarray(labels, dtype=np.float64)])
    return rows[np.lexsort([rows[:, i] for i in range(4, -1, -1)])[::-1]]


@pilot
async def test_tui_shows_map_for_a_detect_run(
    det_run: tuple[Cli, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneterm.tui.widgets.curve import CurvePlot

    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path / "settings"))
    cli, _, _ = det_run
    app = new_app(RunStore(cli.runs))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "mAP " in screen_text(app), what="best mAP in the run list")
        await until(pilot, lambda: app.selected in app.histories, what="history")
        await pilot.press("2")
        acc = app.screen.query_one("#plot-acc", CurvePlot)
        await until(pilot, lambda: bool(acc.chart.lines), what="mAP curves")
        assert [line.label for line in acc.chart.lines] == ["val mAP", "val mAP@.5"]
        assert len(acc.chart.lines[0].y) == 2
        await pilot.press("7")
        await until(pilot, lambda: "mAP@.5" in screen_text(app), what="test mAP")
        assert "AP per class" in screen_text(app)


def test_compare_includes_map(det_run: tuple[Cli, str, Path]) -> None:
    from tuneterm.runs import report
    from tuneterm.tui.history import RunHistory
    from tuneterm.tui.screens.compare import metric_columns, metric_rows, table_header

    cli, run_id, _ = det_run
    store = RunStore(cli.runs)
    info = store.info(run_id)
    assert info.meta is not None
    history = RunHistory()
    history.add(store.events(run_id))
    columns = metric_columns([info])
    (row,) = metric_rows([info], {run_id: history}, columns)
    cell = dict(zip(table_header(columns), row, strict=True))  # columns from the metric spec
    assert "val acc" not in cell and "test acc" not in cell
    val_map = metric_spec_of_run(info.meta).metric("val_map")
    maps = history.val.np("val_map")
    assert cell["val mAP"] == f"{val_map.format(maps.max())} / {val_map.format(maps[-1])}"
    test_map50 = metric_spec_of_run(info.meta).metric("test_map50")
    assert cell["test mAP@.5"] == test_map50.format(info.meta.final["test_map50"])
    data = report.compare(store, [info, info])
    assert data["metrics"]["final.test_map50"][run_id] == info.meta.final["test_map50"]
    assert data["metrics"]["best.val_map"][run_id] == info.meta.best["val_map"]
