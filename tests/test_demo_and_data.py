"""The demo's configs and the data options it relies on (relabel, per_class, shift)."""

from __future__ import annotations

import pytest
import torch

from tuneterm.cli.demo import PARITY, TARGET_PER_CLASS, configs
from tuneterm.config import ConfigError, from_dict
from tuneterm.engine.data import DataError
from tuneterm.engine.kinds.classify.data import apply_shift, build


def test_demo_configs_validate_and_share_the_test_split() -> None:
    cfgs = configs("20261123-000000-resnet18-abcd")
    assert set(cfgs) == {"source", "finetune", "scratch"}
    assert cfgs["finetune"].model.init == "run:20261123-000000-resnet18-abcd"
    assert cfgs["scratch"].model.init == ""
    src = build(cfgs["source"].data, cfgs["source"].train.seed)
    tgt = build(cfgs["finetune"].data, cfgs["finetune"].train.seed)
    assert tgt.classes == list(PARITY)
    assert len(tgt.train) == 2 * TARGET_PER_CLASS
    # The same seeded stratified split: the target's test images are the source's test images,
    # which the source run never trained on.
    assert torch.equal(src.test.images, tgt.test.images)  # type: ignore[arg-type]
    parity = torch.tensor([int(src.classes[y]) % 2 for y in src.test.labels.tolist()])
    assert torch.equal(tgt.test.labels, parity)


def test_per_class_is_stratified_and_seeded() -> None:
    cfg = from_dict({"data": {"per_class": 7}})
    a, b = build(cfg.data, 0), build(cfg.data, 0)
    assert torch.bincount(a.train.labels).tolist() == [7] * 10
    assert torch.equal(a.train.images, b.train.images)  # type: ignore[arg-type]
    assert a.counts["removed_per_class"] == a.counts["images"] - len(a.val) - len(a.test) - 70


def test_relabel_errors_name_the_group_and_class() -> None:
    with pytest.raises(DataError, match=r"data.relabel.even: class '11' is not in the data set"):
        build(from_dict({"data": {"relabel": {"even": ["0", "11"]}}}).data, 0)
    with pytest.raises(DataError, match="already in another group"):
        build(from_dict({"data": {"relabel": {"a": ["0"], "b": ["0", "1"]}}}).data, 0)


def test_shift_is_a_deterministic_domain_shift() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    assert torch.equal(apply_shift(x, "invert"), 255 - x)
    assert torch.equal(apply_shift(apply_shift(x, "rot90"), "rot90"), apply_shift(x, "rot180"))
    with pytest.raises(ConfigError, match=r"data\.shift"):
        from_dict({"data": {"shift": "sideways"}})


def _affine_residual(x: torch.Tensor, y: torch.Tensor) -> float:
    """How far y is from the best per-channel a * x + b (what BatchNorm statistics can undo),
    as a share of y's spread."""
    worst = 0.0
    for c in range(3):
        xc, yc = x[:, c].flatten().double(), y[:, c].flatten().double()
        a = torch.stack([xc, torch.ones_like(xc)], 1)
        fit = a @ torch.linalg.lstsq(a, yc[:, None]).solution
        worst = max(worst, float((yc - fit[:, 0]).std() / yc.std()))
    return worst


def test_texture_is_a_shift_that_batchnorm_statistics_cannot_undo() -> None:
    """`contrast` is per-channel affine (AdaBN's case); `texture` (MNIST-M style) is not, and
    is the same for the same images, different from `colour`."""
    from tuneterm.engine.kinds.classify.data import load_digits

    x = load_digits(16)[0][:64]
    assert _affine_residual(x, apply_shift(x, "contrast")) < 0.01
    tex = apply_shift(x, "texture")
    assert torch.equal(tex, apply_shift(x.clone(), "texture"))
    assert not torch.equal(tex, apply_shift(x, "colour"))
    assert _affine_residual(x, tex) > 0.5


def test_classes_filter_keeps_order_and_rejects_unknown() -> None:
    d = build(from_dict({"data": {"classes": ["7", "3"]}}).data, 0)
    assert d.classes == ["7", "3"]
    with pytest.raises(DataError, match=r"data.classes = \['x'\]"):
        build(from_dict({"data": {"classes": ["x"]}}).data, 0)


def test_digits_are_scikit_learns_read_without_importing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine reads the digits from the file scikit-learn ships (its import takes
    seconds of a run's start); they are exactly what `load_digits()` returns."""
    import sys

    import numpy as np

    from tuneterm.engine.data import sklearn_digits

    with monkeypatch.context() as m:
        for name in [n for n in sys.modules if n.split(".")[0] == "sklearn"]:
            m.delitem(sys.modules, name)  # as if no test had imported it yet
        images, target = sklearn_digits()
        assert "sklearn" not in sys.modules
    from sklearn.datasets import load_digits

    d = load_digits()
    assert images.dtype == d.images.dtype and target.dtype == d.target.dtype
    assert np.array_equal(images, d.images) and np.array_equal(target, d.target)
