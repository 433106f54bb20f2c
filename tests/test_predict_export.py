"""predict and export-model for a classification run: top-k classes as JSON, and TorchScript +
ONNX files that load and give the in-process model's probabilities."""

from __future__ import annotations

from pathlib import Path

from helpers.cli import Cli
from PIL import Image

from tuneterm.runs.export import export_model, read_metadata
from tuneterm.runs.predict import PredictInput, predict
from tuneterm.store import RunStore


def test_classify_predict_top_k_and_export(tmp_path: Path, tiny_config: Path, cli: Cli) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from tuneterm.engine.kinds.classify.data import decode
    from tuneterm.engine.kinds.classify.models import from_checkpoint

    run = cli.json("run", str(tiny_config), "--set", "train.epochs=1")
    assert run["status"] == "completed"
    image = tmp_path / "digit.png"
    Image.fromarray((np.eye(16) * 255).astype(np.uint8)).save(image)
    store = RunStore(cli.runs)
    out = predict(store, run["id"], PredictInput(images=[image], top_k=2))  # what the CLI prints
    assert out["task"] == "classify"
    (pred,) = out["predictions"]
    assert [c["class"] for c in pred["top_k"]] != [] and len(pred["top_k"]) == 2
    assert {c["class"] for c in pred["top_k"]} <= {"0", "1", "2"}
    assert pred["top_k"][0]["score"] >= pred["top_k"][1]["score"]
    best = Path(out["checkpoint"])
    ck = torch.load(best, weights_only=True)
    x = decode(image, 16)[None].float() / 255
    with torch.no_grad():
        mean, std = (
            torch.tensor(ck["mean"]).view(1, 3, 1, 1),
            torch.tensor(ck["std"]).view(1, 3, 1, 1),
        )
        ref = from_checkpoint(best).eval()((x - mean) / std).softmax(1)
    assert pred["top_k"][0]["score"] == round(float(ref.max()), 6)
    ts = export_model(store, run["id"], "torchscript", tmp_path / "m.pt")
    onnx = export_model(store, run["id"], "onnx", tmp_path / "m.onnx")
    for done in (ts, onnx):
        meta = read_metadata(done.path)
        assert meta["classes"] == ["0", "1", "2"] and meta["image_size"] == 16
        assert meta["mean"] == ck["mean"] and meta["task"] == "classify"
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(ts.path))(x), ref, atol=1e-5)
    sess = ort.InferenceSession(str(onnx.path), providers=["CPUExecutionProvider"])
    (probs,) = sess.run(None, {"image": x.numpy()})
    assert np.allclose(probs, ref.numpy(), atol=1e-4)
    # what the user sees: no torch deprecation warnings from the commands
    for args in (
        ("predict", run["id"], str(image)),
        ("export-model", run["id"], "--format", "onnx", "--out", str(tmp_path / "c.onnx")),
    ):
        err = cli(*args, check=0).stderr
        assert "FutureWarning" not in err and "Warning:" not in err, err
