"""timm and Hugging Face models, and Hugging Face data sets, offline through the real CLI.

Every model is tiny (16 px, a few dozen images, 1-2 epochs) and starts from random init, a
weights file the test writes, or a `save_pretrained` folder the test writes: nothing is
downloaded. Bad input is refused at launch (exit 2, the field named, no run folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.cli import Cli

from tuneterm.cli import main

pytest.importorskip("timm")
datasets = pytest.importorskip("datasets")

CLASSES = ("dark", "light", "red")


def _image(i: int, label: int) -> object:
    from PIL import Image

    colour = [(20 + i, 20, 30), (220, 220 - i, 210), (200, 30 + i, 20)][label]
    return Image.new("RGB", (20, 20), colour)


def _save_dataset(path: Path, n: int = 12, image_column: str = "img") -> Path:
    """A `save_to_disk` folder: `n` images per class, labels a ClassLabel feature."""
    feats = datasets.Features(
        {image_column: datasets.Image(), "y": datasets.ClassLabel(names=list(CLASSES))}
    )
    rows = [(_image(i, c), c) for c in range(3) for i in range(n)]
    ds = datasets.Dataset.from_dict(
        {image_column: [r[0] for r in rows], "y": [r[1] for r in rows]}, features=feats
    )
    ds.save_to_disk(str(path))
    return path


def _config(tmp: Path, model: str, extra: str = "", data: str = "") -> Path:
    path = tmp / "run.toml"
    path.write_text(
        f"""
[model]
{model}
[data]
{data or 'dataset = "digits"' + chr(10) + 'classes = ["0", "1", "2"]' + chr(10) + "per_class = 16"}
image_size = 16
[train]
epochs = 1
batch_size = 16
lr = 0.003
threads = 1
{extra}
"""
    )
    return path


def _png(tmp: Path) -> Path:
    path = tmp / "probe.png"
    _image(3, 2).save(path)  # type: ignore[attr-defined]
    return path


def _trains_and_predicts(cli: Cli, config: Path, tmp: Path) -> tuple[dict, Path]:
    out = cli("run", str(config), "--json", check=0)
    run = json.loads(out.stdout)
    assert run["status"] == "completed", out.stdout
    pred = cli.json("predict", run["id"], str(_png(tmp)))
    assert pred["predictions"][0]["top_k"][0]["class"]
    shown = cli.json("show", run["id"])
    return shown, Path(shown["path"]) / "checkpoints" / "best.pt"


def test_timm_from_random_init_on_a_load_from_disk_dataset(tmp_path: Path, cli: Cli) -> None:
    root = _save_dataset(tmp_path / "colours")
    data = f'dataset = "hf"\nroot = "{root}"\nimage_column = "img"\nlabel_column = "y"'
    config = _config(tmp_path, 'name = "timm/resnet10t"\nweights = "none"', data=data)
    run, best = _trains_and_predicts(cli, config, tmp_path)
    ck = torch.load(best, map_location="cpu", weights_only=True)
    assert ck["classes"] == list(CLASSES)  # from the ClassLabel feature
    assert ck["preprocess"]["source"] == "timm"
    assert ck["preprocess"]["interpolation"] == "bicubic"  # resnet10t's pretrained cfg
    assert run["final"]["test_acc"] > 0.5


def test_timm_from_a_local_weights_file_loads_its_weights(tmp_path: Path, cli: Cli) -> None:
    import timm

    file = tmp_path / "resnet10t.pth"
    torch.manual_seed(7)
    torch.save(timm.create_model("resnet10t", num_classes=5).state_dict(), file)
    model = f'source = "timm"\nname = "resnet10t"\nweights = "{file}"'
    # a linear probe keeps the body as loaded, so the checkpoint shows what was loaded
    config = _config(tmp_path, model, extra='[freeze]\nstrategy = "linear_probe"')
    _, best = _trains_and_predicts(cli, config, tmp_path)
    saved = torch.load(file, weights_only=True)
    ck = torch.load(best, map_location="cpu", weights_only=True)
    assert torch.equal(ck["model"]["net.conv1.0.weight"], saved["conv1.0.weight"])
    assert torch.equal(ck["model"]["net.layer4.0.conv2.weight"], saved["layer4.0.conv2.weight"])
    assert ck["model"]["net.fc.weight"].shape[0] == 3  # a new head for this run's classes


def test_hf_image_model_from_a_save_pretrained_folder(tmp_path: Path, cli: Cli) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path / "tiny-vit"
    conf = ViTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    conf.num_labels = 7
    torch.manual_seed(0)
    ViTForImageClassification(conf).save_pretrained(folder)
    ViTImageProcessor(size=16, image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(folder)
    config = _config(tmp_path, f'name = "hf/{folder}"')
    _, best = _trains_and_predicts(cli, config, tmp_path)
    ck = torch.load(best, map_location="cpu", weights_only=True)
    assert ck["std"] == pytest.approx([0.25] * 3)  # the image processor's normalisation
    assert ck["model"]["net.classifier.weight"].shape == (3, 32)
    # export-model's default format works for an HF model too (traced where scripting fails)
    run_id = next(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    done = cli.json("export-model", run_id, "--out", str(tmp_path / "vit.pt"))
    module = torch.jit.load(done["path"])
    probs = module(torch.rand(2, 3, 16, 16))
    assert probs.shape == (2, 3) and torch.allclose(probs.sum(1), torch.ones(2), atol=1e-4)


def test_layer_decay_follows_timm_group_matcher() -> None:
    from timm.models import group_parameters

    from tuneterm.config import ModelSection, TrainSection
    from tuneterm.engine.kinds.classify.models import build_model
    from tuneterm.engine.optim import param_groups

    built = build_model(
        ModelSection.model_validate({"name": "timm/resnet10t", "weights": "none"}),
        4,
        None,
        None,
        None,
        16,
    )
    net: Any = built.model.net
    groups = group_parameters(net, net.group_matcher(coarse=False))
    body = [[f"net.{n}" for n in names] for _, names in sorted(groups.items())][:-1]  # head last
    t = TrainSection.model_validate({"lr": 1.0, "layer_decay": 0.5, "weight_decay": 0.0})
    lr_of = {
        id(p): g["lr"] for g in param_groups(built.model, t, built.head_name) for p in g["params"]
    }
    named = dict(built.model.named_parameters())
    for i, names in enumerate(body):
        assert {lr_of[id(named[n])] for n in names} == {0.5 ** (len(body) - i)}
    assert lr_of[id(named["net.fc.weight"])] == 1.0
    assert len(body) == 5  # stem, layer1..layer4


def test_lora_targets_a_vits_attention_and_mlp_projections() -> None:
    from tuneterm.config import ModelSection
    from tuneterm.engine.kinds.classify.models import build_model

    section = ModelSection.model_validate({"name": "timm/vit_tiny_patch16_224", "weights": "none"})
    built = build_model(section, 3, None, None, None, 32)
    targets = built.model.lora_targets()  # type: ignore[operator]
    assert {t.rsplit(".", 1)[-1] for t in targets} == {"qkv", "proj", "fc1", "fc2"}
    assert not any(t.startswith("net.patch_embed") or t == "net.head" for t in targets)


# -- refused at launch ----------------------------------------------------------------------
def _refused(tmp: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    runs = tmp / "runs"
    code = main(["--runs-dir", str(runs), "run", str(config), "--detach"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not runs.exists() or not any(p for p in runs.iterdir() if not p.name.startswith("."))
    return err


def test_unknown_timm_model_suggests_close_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, 'name = "timm/convnext_tinny"\nweights = "none"')
    err = _refused(tmp_path, config, capsys)
    assert 'model.name = "timm/convnext_tinny": unknown timm model' in err
    assert "convnext_tiny" in err


def test_weights_of_another_architecture_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import timm

    file = tmp_path / "other.pth"
    torch.save(timm.create_model("resnet14t", num_classes=2).state_dict(), file)
    config = _config(tmp_path, f'name = "timm/vit_tiny_patch16_224"\nweights = "{file}"')
    err = _refused(tmp_path, config, capsys)
    assert "model.weights" in err and "another architecture than vit_tiny_patch16_224" in err


def test_missing_and_imageless_columns_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _save_dataset(tmp_path / "colours", n=2)
    base = f'dataset = "hf"\nroot = "{root}"\nimage_column = "img"'
    config = _config(tmp_path, 'weights = "none"', data=base + '\nlabel_column = "labels"')
    err = _refused(tmp_path, config, capsys)
    assert 'data.label_column = "labels": no such column; the data set has img, y' in err
    config = _config(
        tmp_path, 'weights = "none"', data=base.replace('"img"', '"y"') + '\nlabel_column = "y"'
    )
    err = _refused(tmp_path, config, capsys)
    assert 'data.image_column = "y": holds int64 values, not images' in err


def test_hub_names_offline_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNETERM_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    config = _config(tmp_path, 'name = "hf/acme/vit-nowhere"')
    err = _refused(tmp_path, config, capsys)
    assert 'model.name = "hf/acme/vit-nowhere": not in the Hugging Face cache' in err
    assert "save_pretrained(DIR)" in err
    data = 'dataset = "hf"\nroot = "acme/beans-nowhere"'
    err = _refused(tmp_path, _config(tmp_path, 'weights = "none"', data=data), capsys)
    assert 'data.root = "acme/beans-nowhere": a hub data set' in err and "save_to_disk" in err


def test_text_runs_read_an_hf_dataset_with_class_names(tmp_path: Path) -> None:
    from tuneterm.config import DataSection
    from tuneterm.engine.kinds.text.data import build
    from tuneterm.tasks.text import TextSection

    feats = datasets.Features(
        {"sentence": datasets.Value("string"), "y": datasets.ClassLabel(names=["neg", "pos"])}
    )
    texts = [f"text number {i}" for i in range(20)]
    ds = datasets.Dataset.from_dict(
        {"sentence": texts, "y": [i % 2 for i in range(20)]}, features=feats
    )
    ds.save_to_disk(str(tmp_path / "sentiment"))
    d = DataSection.model_validate({"dataset": "hf", "root": str(tmp_path / "sentiment")})
    text = TextSection.model_validate({"text_column": "sentence", "label_column": "y"})
    data = build(d, text, seed=0)
    assert data.classes == ["neg", "pos"]
    assert sum(data.counts[k] for k in ("train", "val", "test")) == 20
