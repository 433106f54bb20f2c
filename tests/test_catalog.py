"""The model catalog: torchvision's names and weights, cached per library version so that
launch checks need no torch import; a missing, damaged or stale cache is rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneterm.config import catalog


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    catalog._catalog.cache_clear()
    yield tmp_path / "xdg" / "tuneterm"
    catalog._catalog.cache_clear()


def test_catalog_is_built_once_and_matches_torchvision(cache_home: Path) -> None:
    import torchvision

    names = catalog.models("classify")
    assert names == sorted(torchvision.models.list_models(module=torchvision.models))
    files = list(cache_home.glob("models-*.json"))
    assert len(files) == 1 and catalog.library_key() in files[0].name
    info = catalog.model("resnet18")
    assert info is not None and info.kind == "classify"
    member = torchvision.models.get_model_weights("resnet18").DEFAULT
    w = info.resolve("DEFAULT")
    assert w is not None and w.url == member.url and w.label == f"ResNet18_Weights.{member.name}"
    assert info.resolve("none") is None
    with pytest.raises(KeyError):
        info.resolve("IMAGENET9K")
    assert "ssdlite320_mobilenet_v3_large" in catalog.models("detect")


@pytest.mark.parametrize("content", ["{not json", '{"key": "torch-0.0_other", "models": {}}'])
def test_a_damaged_or_stale_cache_is_rebuilt(cache_home: Path, content: str) -> None:
    path = cache_home / f"models-{catalog.library_key()}.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert "resnet18" in catalog.models("classify")
    assert json.loads(path.read_text())["key"] == catalog.library_key()


def test_a_warm_catalog_answers_without_importing_torch(tmp_path: Path) -> None:
    env_code = (
        "import sys; from tuneterm.config import catalog; "
        "m = catalog.models(); p = catalog.input_size_problem('resnet18', 32); "
        "print(len(m) > 10, p, 'torch' in sys.modules)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    first = subprocess.run(
        [sys.executable, "-c", env_code], capture_output=True, text=True, env=env
    )
    assert first.stdout.split() == ["True", "None", "True"], first.stderr
    second = subprocess.run(
        [sys.executable, "-c", env_code], capture_output=True, text=True, env=env
    )
    assert second.stdout.split() == ["True", "None", "False"], second.stderr


def test_input_sizes_a_model_cannot_take_are_named(cache_home: Path) -> None:
    problem = catalog.input_size_problem("vit_b_16", 32)
    assert problem is not None and "224" in problem
    assert catalog.input_size_problem("vit_b_16", 32) == problem  # from the cache


def test_hub_dir_follows_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch.hub

    for env in ({"TORCH_HOME": str(tmp_path / "th")}, {"XDG_CACHE_HOME": str(tmp_path / "x")}):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert catalog.hub_dir() == Path(torch.hub.get_dir())
