"""Fine-tuning techniques, in-process on tiny models (resnet18 at 16 px, random init)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.trainer import BASE, Ctx, make
from torch import nn

from tuneterm.config import ConfigError, loads
from tuneterm.engine import checkpoint
from tuneterm.engine.kinds.classify.data import Split, build, dedup
from tuneterm.engine.kinds.classify.models import from_checkpoint
from tuneterm.engine.models import stages
from tuneterm.engine.trainer import Trainer


def frozen_names(tr: Trainer) -> set[str]:
    return {n for n, p in tr.model.named_parameters() if not p.requires_grad}


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("[freeze]\nstrategy = 'all'", "freeze.strategy", "all"),
        ("[freeze]\nstages_n = 2", "freeze.stages_n", None),
        ("[freeze]\nstrategy = 'first_n'", "freeze.stages", "0"),
        ("[head]\nhidden = [0]", "head.hidden", "[0]"),
        ("[mix]\nmixup = -1", "mix.mixup", "-1"),
        ("[distill]\nteacher = 'resnet50'", "distill.teacher", "resnet50"),
        ("[adapt]\nmethod = 'adabn'", "adapt.target_shift", "none"),
        ("[ema]\ndecay = 1.5", "ema.decay", "1.5"),
        ("[early_stop]\nmode = 'up'", "early_stop.mode", "up"),
        ("[lora]\nenabled = true\n[freeze]\nstrategy = 'linear_probe'", "freeze.strategy", None),
        ("[data]\naugment = 'randaugmnt'", "data.augment", "randaugment"),
        ("[train]\ngrad_accum = 0", "train.grad_accum", "0"),
    ],
)
def test_technique_config_errors_name_field_and_value(
    text: str, field: str, value: str | None
) -> None:
    with pytest.raises(ConfigError) as err:
        loads(text)
    msg = str(err.value)
    assert field in msg
    if value is not None:
        assert value in msg


# -- structure and freezing ------------------------------------------------------------------
def test_mlp_head_and_stages(tmp_path: Path) -> None:
    tr = make(
        tmp_path, "[head]\nkind = 'mlp'\nhidden = [32, 16]\nactivation = 'gelu'\ndropout = 0.1"
    )
    head = tr.model.get_submodule(tr.head_name)
    assert [type(m).__name__ for m in head] == ["Linear", "GELU", "Dropout"] * 2 + ["Linear"]
    assert head[-1].out_features == 3
    names = [s.name for s in stages(tr.model, tr.head_name)]
    assert names == ["conv1+bn1", "layer1", "layer2", "layer3", "layer4"]


def _one_step(tr: Trainer) -> None:
    tr.cfg.train.log_every = 1000
    assert tr.train_epoch()


def test_linear_probe_freezes_backbone_and_its_batchnorm(tmp_path: Path) -> None:
    tr = make(tmp_path, "[freeze]\nstrategy = 'linear_probe'")
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    bn_mean = tr.model.bn1.running_mean.clone()
    _one_step(tr)
    assert tr.model.bn1.training is False
    assert torch.equal(tr.model.bn1.running_mean, bn_mean)  # stats untouched
    frozen = frozen_names(tr)
    assert frozen and all(not n.startswith("fc.") for n in frozen)
    for n, p in tr.model.named_parameters():
        if n in frozen:
            assert p.grad is None and torch.equal(p, before[n])
            assert p not in tr.opt.state
        else:
            assert not torch.equal(p, before[n])
    assert tr.params["trainable"] == 512 * 3 + 3  # the head alone
    assert 0 < tr.params["trainable_pct"] < 1


def test_first_n_stages(tmp_path: Path) -> None:
    tr = make(tmp_path, "[freeze]\nstrategy = 'first_n'\nstages = 2")
    frozen = frozen_names(tr)
    assert any(n.startswith("layer1.") for n in frozen) and "conv1.weight" in frozen
    assert not any(n.startswith("layer2.") for n in frozen)


def test_gradual_unfreezing_schedule(tmp_path: Path) -> None:
    tr = make(tmp_path, "[freeze]\nstrategy = 'gradual'\nevery = 1\n[train]\nepochs = 3")
    assert frozen_names(tr) == {
        n for n, _ in tr.model.named_parameters() if not n.startswith("fc.")
    }
    tr.fit()
    unfreezes = [f for k, f in tr.ctx.events if k == "unfreeze"]  # type: ignore[attr-defined]
    assert [u["frozen_stages"] for u in unfreezes] == [4, 3]
    assert not any(n.startswith("layer3.") for n in frozen_names(tr))
    stem = tr.model.conv1.weight
    assert not stem.requires_grad and stem not in tr.opt.state  # never trained: no state


def test_layer_decay_and_head_lr(tmp_path: Path) -> None:
    tr = make(tmp_path, "[train]\nlr = 0.01\nhead_lr = 0.1\nlayer_decay = 0.5\nscheduler = 'none'")
    lr_of = {id(p): g["lr"] for g in tr.opt.param_groups for p in g["params"]}
    assert lr_of[id(tr.model.fc.weight)] == pytest.approx(0.1)
    assert lr_of[id(tr.model.layer4[0].conv1.weight)] == pytest.approx(0.01 * 0.5)
    assert lr_of[id(tr.model.conv1.weight)] == pytest.approx(0.01 * 0.5**5)
    decay_of = {id(p): g["weight_decay"] for g in tr.opt.param_groups for p in g["params"]}
    assert decay_of[id(tr.model.bn1.weight)] == 0.0 and decay_of[id(tr.model.fc.bias)] == 0.0
    assert decay_of[id(tr.model.conv1.weight)] > 0


# -- optimisation ---------------------------------------------------------------------------
def test_grad_accumulation_steps_and_clipping(tmp_path: Path) -> None:
    tr = make(
        tmp_path,
        "[train]\noptimizer = 'sgd'\nmomentum = 0.0\nweight_decay = 0.0\nscheduler = 'none'\n"
        "lr = 1.0\ngrad_accum = 2\ngrad_clip = 0.001",
    )
    before = [p.detach().clone() for p in tr.model.parameters()]
    _one_step(tr)
    assert tr.sched.last_epoch == 1  # 2 batches, one optimizer step
    delta = torch.cat(
        [(p - b).flatten() for p, b in zip(tr.model.parameters(), before, strict=False)]
    )
    assert 0 < delta.norm().item() <= 1.0 * 0.001 * 1.0001


def test_label_smoothing_changes_the_loss(tmp_path: Path) -> None:
    tr = make(tmp_path, "[train]\nlabel_smoothing = 0.2")
    logits = torch.tensor([[10.0, 0.0, 0.0]])
    y = torch.tensor([0])
    assert tr.task.criterion(logits, y) > nn.functional.cross_entropy(logits, y) + 0.5


def test_early_stopping(tmp_path: Path) -> None:
    from tuneterm.engine.techniques.early_stop import EarlyStop

    cfg = loads(
        "[early_stop]\nenabled = true\nmetric = 'val_acc'\nmode = 'max'\npatience = 2\n"
        "min_delta = 0.01"
    )
    es = EarlyStop(cfg)

    class T:
        ctx = Ctx(tmp_path)
        state = type("S", (), {"epoch": 0})()

    seq = [0.5, 0.6, 0.605, 0.61, 0.62]
    stops = [es.epoch_end(T(), {"acc": a, "loss": 0.0}) for a in seq]  # type: ignore[arg-type]
    assert stops == [False, False, False, True, False][: len(stops)] or stops[:4] == [
        False,
        False,
        False,
        True,
    ]


def test_early_stop_ends_a_run(tmp_path: Path) -> None:
    tr = make(
        tmp_path,
        "[train]\nepochs = 6\nlr = 1e-9\n[early_stop]\nenabled = true\npatience = 1"
        "\nmin_delta = 1.0",
    )
    assert tr.fit() == "completed"
    assert tr.state.epoch == 2


# -- augmentation ---------------------------------------------------------------------------
def test_presets_and_describe() -> None:
    from tuneterm.engine.techniques.augment import PRESETS, describe, transform_for

    assert set(PRESETS) == {"none", "light", "randaugment", "trivialaugment", "autoaugment"}
    img = torch.randint(0, 255, (3, 16, 16), dtype=torch.uint8)
    for name in ("light", "randaugment", "trivialaugment", "autoaugment"):
        out = transform_for(name, 16)(img)
        assert out.shape == img.shape and out.dtype == torch.uint8
    text = describe(loads("[data]\naugment = 'trivialaugment'\n[mix]\ncutmix = 1.0"))
    assert "TrivialAugmentWide" in text and "CutMix(alpha=1.0)" in text


def test_mixup_gives_soft_targets(tmp_path: Path) -> None:
    tr = make(tmp_path, "[mix]\nmixup = 0.4\ncutmix = 1.0")
    x = torch.randn(4, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 0])
    _xm, ym = tr.tech.batch(x, y)
    assert ym.shape == (4, 3) and torch.allclose(ym.sum(1), torch.ones(4))
    _one_step(tr)


def test_mix_random_state_survives_a_resume() -> None:
    import torch

    from tuneterm.config import from_dict
    from tuneterm.engine.techniques.mix import Mix

    cfg = from_dict({"mix": {"mixup": 0.2}})
    a = Mix(cfg)
    torch.rand(3, generator=a.gen)  # some draws before the checkpoint
    state = a.state_dict()
    expected = torch.rand(3, generator=a.gen)
    b = Mix(cfg)
    b.load_state_dict(state)
    assert torch.equal(torch.rand(3, generator=b.gen), expected)


# -- data reduction -------------------------------------------------------------------------
def test_data_reduction_counts() -> None:
    cfg = loads("[data]\ndataset = 'digits'\nimage_size = 8\nfraction = 0.5\nexclude = ['9']")
    b = build(cfg.data, 0)
    assert "9" not in b.classes and b.counts["removed_exclude"] == 180
    per = torch.bincount(b.train.labels)
    assert per.max() - per.min() <= 10  # stratified
    assert b.counts["removed_fraction"] == pytest.approx(b.counts["train"], abs=9)
    b2 = build(cfg.data, 0)
    assert torch.equal(b.train.labels, b2.train.labels)  # seeded


def test_dedup_by_content() -> None:
    imgs = torch.randint(0, 255, (5, 3, 4, 4), dtype=torch.uint8)
    imgs[3] = imgs[1]
    s = dedup(Split(torch.arange(5), imgs))
    assert len(s) == 4 and s.labels.tolist() == [0, 1, 2, 4]


# -- distillation ---------------------------------------------------------------------------
def test_kd_loss() -> None:
    from tuneterm.engine.techniques.distill import kd_loss

    z = torch.randn(4, 3)
    assert kd_loss(z, z, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(z, -z, 4.0).item() > 0


def test_distill_teacher_from_a_run(tmp_path: Path) -> None:
    from tuneterm.engine.techniques.distill import Distill

    teacher_tr = make(tmp_path)
    teacher_tr.fit()
    d = Distill(loads("[distill]\nteacher = 'torchvision:resnet18'\nalpha = 1.0"))
    d.teacher = from_checkpoint(tmp_path / "best.pt")
    tr = make(tmp_path / "s", "")
    d.setup(tr)
    assert not d.teacher.training and not any(p.requires_grad for p in d.teacher.parameters())
    x = torch.randn(2, 3, 16, 16)
    logits = tr.model(x)
    base = torch.tensor(0.7)
    out = d.loss(tr, x, torch.tensor([0, 1]), logits, base)
    assert out.requires_grad and out.item() != pytest.approx(0.7)
    d.cfg.distill.alpha = 0.0
    assert d.loss(tr, x, torch.tensor([0, 1]), logits, base).item() == pytest.approx(0.7)


# -- LoRA -----------------------------------------------------------------------------------
def test_lora_saves_adapters_and_head_only(tmp_path: Path) -> None:
    src = make(tmp_path / "src")
    src.fit()
    init = tmp_path / "src" / "best.pt"
    tr = make(tmp_path, "[lora]\nenabled = true\nrank = 2", init=init)
    assert tr.params["trainable_pct"] < 10
    tr.fit()
    ck = checkpoint.load(tmp_path / "best.pt")
    assert ck["partial"] and all("lora_" in k or k.startswith("fc.") for k in ck["model"])
    model = from_checkpoint(tmp_path / "best.pt").eval()
    tr.model.eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(model(x), tr.model(x), atol=1e-5)


# -- EMA ------------------------------------------------------------------------------------
def test_ema_is_evaluated_and_kept(tmp_path: Path) -> None:
    tr = make(tmp_path, "[ema]\nenabled = true\ndecay = 0.5\nkeep = true")
    tr.fit()
    ema = tr.tech.get("ema")
    assert ema is not None
    vals = [f for k, f in tr.ctx.events if k == "val"]  # type: ignore[attr-defined]
    assert "model_val_acc" in vals[0]
    best = checkpoint.load(tmp_path / "best.pt")["model"]
    avg = ema.module.state_dict()  # type: ignore[attr-defined]
    assert torch.equal(best["conv1.weight"], avg["conv1.weight"])
    assert not torch.equal(best["conv1.weight"], tr.model.state_dict()["conv1.weight"])


# -- domain adaptation ----------------------------------------------------------------------
def test_grad_reverse() -> None:
    from tuneterm.engine.techniques.adapt import grad_reverse

    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))  # type: ignore[arg-type]


def test_adabn_reestimates_batchnorm_on_the_target(tmp_path: Path) -> None:
    tr = make(tmp_path, "[adapt]\nmethod = 'adabn'\ntarget_shift = 'invert'")
    tr.fit()
    tr.test()
    before = tr.model.bn1.running_mean.clone()
    out = tr.tech.finish(tr)
    assert set(out) == {"target_acc_source_only", "target_acc"}
    assert not torch.allclose(tr.model.bn1.running_mean, before)


def test_contrast_shift_moves_first_layer_statistics() -> None:
    from tuneterm.engine.kinds.classify.data import apply_shift

    x = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    assert apply_shift(x, "contrast")[0, 0, 0].tolist() == [140, 183, 225]
    cfg = loads("[data]\nshift = 'contrast'\n[adapt]\nmethod = 'adabn'\ntarget_shift = 'contrast'")
    assert (cfg.data.shift, cfg.adapt.target_shift) == ("contrast", "contrast")


def test_dann_trains_a_domain_classifier(tmp_path: Path) -> None:
    tr = make(tmp_path, "[adapt]\nmethod = 'dann'\ntarget_shift = 'rot90'")
    dann = tr.tech.get("dann")
    assert dann is not None
    dom = dann.domain  # type: ignore[attr-defined]
    before = [p.detach().clone() for p in dom.parameters()]
    _one_step(tr)
    assert any(not torch.equal(p, b) for p, b in zip(dom.parameters(), before, strict=False))
    tr.fit()
    tr.test()
    assert "target_acc" in tr.tech.finish(tr)


# -- lr-find ----------------------------------------------------------------------------------
def test_lr_find(tmp_path: Path) -> None:
    from tuneterm.engine.kinds.classify.lr_find import lr_find
    from tuneterm.tui.textplots import lr_curve

    res = lr_find(loads(BASE), start=1e-5, end=1.0, steps=8, runs_root=tmp_path)
    assert res.lrs == sorted(res.lrs) and len(res.losses) == len(res.lrs)
    assert res.lrs[0] <= res.suggestion <= res.lrs[-1]
    assert "LR range test" in lr_curve(res.lrs, res.losses, res.suggestion)
