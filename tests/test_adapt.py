"""Domain adaptation: DANN, CDAN, CORAL and MMD beat source-only on a synthetic shift (a tiny MLP,
seconds), train through the real Trainer with their domain metrics, and a whole run through
the CLI adapts to a folder of unlabeled images and shows its domain figures in `compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import TINY, Cli
from helpers.trainer import make
from torch import nn
from torch.nn import functional as F

from tuneterm.config import ConfigError, loads
from tuneterm.engine.techniques.align import (
    condition,
    coral_loss,
    grad_reverse,
    mmd_loss,
    reversal_coefficient,
)


# -- the methods on a synthetic shift ---------------------------------------------------------
def _blobs(seed: int, shifted: bool, n: int = 200, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes apart along the first axis; the target domain is scaled and moved, so a
    classifier of the source puts nearly every target point in one class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, d, generator=g) * 0.7
    x[:, 0] += (y.float() * 2 - 1) * 1.5
    if shifted:
        x = x * torch.tensor([0.5] + [2.0] * (d - 1)) + torch.tensor([2.0] + [1.0] * (d - 1))
    return x, y


def _target_acc(method: str, steps: int = 150) -> float:
    """Train a small MLP on labelled source + unlabeled target batches (64 + 64, one forward,
    as the technique does); the target accuracy of the result."""
    torch.manual_seed(0)
    xs, ys = _blobs(1, False)
    xt, yt = _blobs(2, True)
    body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
    head = nn.Linear(16, 2)
    width = 16 * 2 if method == "cdan" else 16  # CDAN: features x class probabilities
    domain = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, 1))
    params = [*body.parameters(), *head.parameters(), *domain.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    is_target = torch.cat([torch.zeros(64), torch.ones(64)])
    for step in range(steps):
        i, j = torch.randint(0, len(xs), (64,)), torch.randint(0, len(xt), (64,))
        f = body(torch.cat([xs[i], xt[j]]))
        loss = F.cross_entropy(head(f[:64]), ys[i])
        if method == "coral":
            loss = loss + coral_loss(f[:64], f[64:])
        elif method == "mmd":
            loss = loss + mmd_loss(f[:64], f[64:])
        elif method in ("dann", "cdan"):
            g = condition(f, head(f).softmax(1)) if method == "cdan" else f
            rev = grad_reverse(g, reversal_coefficient(step / steps))
            loss = loss + F.binary_cross_entropy_with_logits(domain(rev).squeeze(1), is_target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (head(body(xt)).argmax(1) == yt).float().mean().item()


@pytest.mark.parametrize("method", ["dann", "cdan", "coral", "mmd"])
def test_method_beats_source_only_on_a_synthetic_shift(method: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        source_only, adapted = _target_acc("none"), _target_acc(method)
    finally:
        torch.set_num_threads(threads)
    assert source_only < 0.56  # the shift defeats the source classifier: chance is 0.5
    assert adapted >= source_only + 0.1, (method, source_only, adapted)


def test_cdan_conditions_the_features_on_the_class_probabilities() -> None:
    f, g = torch.randn(4, 3), torch.softmax(torch.randn(4, 2), 1)
    full = condition(f, g)
    assert full.shape == (4, 6)
    assert torch.allclose(full.view(4, 3, 2), f[:, :, None] * g[:, None, :])
    # the randomized map keeps k columns, and its inner products estimate the full map's
    gen = torch.Generator().manual_seed(0)
    proj = (torch.randn(3, 4096, generator=gen), torch.randn(2, 4096, generator=gen))
    small = condition(f, g, proj)
    assert small.shape == (4, 4096)
    assert torch.allclose(small @ small.T, full @ full.T, atol=0.35 * (full @ full.T).abs().max())


def test_cdan_projects_when_the_outer_product_is_too_wide(tmp_path: Path) -> None:
    from tuneterm.engine.techniques.adapt import Cdan

    tr = make(tmp_path, "[adapt]\nmethod = 'cdan'\ntarget_shift = 'texture'")
    cdan = tr.tech.get("cdan")
    assert isinstance(cdan, Cdan) and cdan.proj is None  # tiny model: the full outer product
    first = next(m for m in cdan.domain.modules() if isinstance(m, nn.Linear))
    head = tr.model.get_submodule(tr.head_name)
    assert first.in_features == head.in_features * len(tr.data.classes)
    wide = Cdan(tr.cfg)
    assert wide.domain_input(2048, 1000, torch.device("cpu")) == Cdan.RANDOM_DIM
    assert wide.proj is not None and wide.proj[0].shape == (2048, Cdan.RANDOM_DIM)


def test_reversal_coefficient_ramps_from_zero_to_one() -> None:
    assert reversal_coefficient(0.0) == 0.0
    assert 0.98 < reversal_coefficient(0.5) < reversal_coefficient(1.0) < 1.0


def test_coral_and_mmd_are_zero_for_one_domain_and_grow_with_the_shift() -> None:
    x, _ = _blobs(1, False)
    y, _ = _blobs(3, False)
    z, _ = _blobs(3, True)
    assert coral_loss(x, x).item() == 0.0 and abs(mmd_loss(x, x).item()) < 1e-6
    assert coral_loss(x, z) > 10 * coral_loss(x, y)
    assert mmd_loss(x, z) > 10 * mmd_loss(x, y)


def test_anneal_schedule_is_ganins() -> None:
    from tuneterm.engine.optim import _multiplier

    f = _multiplier("anneal", 100, 0)
    assert f(0) == 1.0 and f(100) == pytest.approx(11**-0.75)


def test_mixing_with_a_feature_method_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        loads("[adapt]\nmethod = 'coral'\ntarget_shift = 'invert'\n[mix]\nmixup = 0.2")
    assert "adapt.method" in str(err.value) and "coral" in str(err.value)


# -- through the Trainer ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dann", "cdan", "coral", "mmd"])
def test_each_batch_is_source_plus_as_many_target_images(tmp_path: Path, method: str) -> None:
    tr = make(tmp_path, f"[adapt]\nmethod = '{method}'\ntarget_shift = 'colour'")
    assert tr.tech.get(method) is not None
    x, y = tr.to_device(next(iter(tr.task.train_batches(0, 0, (0, 1)))))
    xb, yb = tr.tech.batch(x, y)
    assert len(xb) == 2 * len(x) and (yb[len(x) :] == -100).all()  # targets: no class loss
    assert torch.equal(xb[: len(x)], x) and not torch.equal(xb[len(x) :], x)


def test_a_coral_run_reports_domain_metrics_and_target_accuracy(tmp_path: Path) -> None:
    tr = make(tmp_path, "[adapt]\nmethod = 'coral'\ntarget_shift = 'colour'")
    tr.fit()
    vals = [f for kind, f in tr.ctx.events if kind == "val"]  # type: ignore[attr-defined]
    assert 0.0 <= vals[-1]["domain_acc"] <= 1.0 and vals[-1]["domain_loss"] > 0
    tr.test()
    out = tr.tech.finish(tr)
    assert set(out) == {"domain_loss", "domain_acc", "target_acc"}


def test_batchnorm_running_stats_stay_those_of_the_mixed_batches(tmp_path: Path) -> None:
    """What broke DANN: a separate target forward pulled BatchNorm's running statistics back and
    forth between the domains. One forward of source + target keeps them on the mixed batch."""
    tr = make(tmp_path, "[adapt]\nmethod = 'dann'\ntarget_shift = 'invert'")
    x, y = tr.to_device(next(iter(tr.task.train_batches(0, 0, (0, 1)))))
    tr.model.train()
    xb, _ = tr.tech.batch(x, y)
    bn = tr.model.get_submodule("bn1")
    assert isinstance(bn, nn.BatchNorm2d)
    bn.reset_running_stats()
    bn.momentum = None
    tr.model(xb)
    assert bn.running_mean is not None
    mixed = bn.running_mean.clone()
    bn.reset_running_stats()
    tr.model(x)
    assert bn.running_mean is not None
    assert not torch.allclose(mixed, bn.running_mean)  # the target half moved them


# -- a whole run through the CLI ------------------------------------------------------------------
def test_dann_run_on_an_unlabeled_folder_shows_domain_metrics(
    cli: Cli, tmp_path: Path, runs_dir: Path
) -> None:
    from PIL import Image

    target = tmp_path / "target"
    target.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):  # a flat folder: no labels
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(target / f"{i}.png")
    config = tmp_path / "da.toml"
    extra = f"\n[adapt]\nmethod = 'dann'\ntarget_root = '{target}'\n"
    small = TINY.replace("epochs = 4", "epochs = 1").replace("per_class = 40", "per_class = 15")
    config.write_text(small + extra)
    data = json.loads(cli("run", str(config), "--json", check=0).stdout)
    assert data["status"] == "completed"
    assert "target_acc" not in data["final"]  # no labels, no target accuracy
    assert 0.0 <= data["final"]["domain_acc"] <= 1.0
    spec = data["meta"]["metrics"]
    assert {"domain_acc", "domain_loss"} <= {m["name"] for m in spec["val"]}
    lines = cli("events", data["id"], "--json", "--kind", "val", check=0).stdout.splitlines()
    assert all("domain_acc" in json.loads(line) for line in lines)
    plain_config = tmp_path / "plain.toml"
    plain_config.write_text(small)
    plain = json.loads(cli("run", str(plain_config), "--json", check=0).stdout)
    compared = cli.json("compare", data["id"], plain["id"])
    assert compared["metrics"]["final.domain_acc"][data["id"]] == data["final"]["domain_acc"]
    assert compared["metrics"]["final.domain_acc"][plain["id"]] is None


# -- the metric spec ----------------------------------------------------------------------------
def test_a_da_run_declares_its_domain_and_target_metrics() -> None:
    from tuneterm import tasks
    from tuneterm.tasks.spec import MetricSpec
    from tuneterm.tui.metrics import test_value

    spec = MetricSpec.from_dict(
        tasks.run_metric_spec(loads("[adapt]\nmethod = 'mmd'\ntarget_shift = 'colour'"))
    )
    assert [m.label for m in spec.plotted("acc")] == ["acc", "top-5", "domain acc"]
    assert [m.label for m in spec.plotted("loss")] == ["loss", "domain loss"]
    target = spec.metric("target_acc")
    assert target in spec.test and target.format(0.5) == "50.0%"
    # the test event's "acc" is the source's: the target figure comes from meta.json's final
    assert test_value(target, {"split": "test", "acc": 0.9}, {"target_acc": 0.7}) == 0.7
    plain = tasks.run_metric_spec(loads(""))
    assert plain == tasks.get("classify").metric_spec("val_acc")  # no adapt: unchanged


def test_a_target_folder_without_images_exits_2_and_creates_nothing(
    cli: Cli, tmp_path: Path, runs_dir: Path
) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    (target / "notes.txt").write_text("no images here")
    config = tmp_path / "da.toml"
    config.write_text(TINY + f"\n[adapt]\nmethod = 'coral'\ntarget_root = '{target}'\n")
    proc = cli("run", str(config))
    assert proc.returncode == 2, proc.stderr
    assert "adapt.target_root" in proc.stderr and str(target) in proc.stderr
    assert "no images" in proc.stderr
    assert list(runs_dir.iterdir()) == []
