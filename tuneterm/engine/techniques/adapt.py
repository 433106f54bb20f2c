"""Domain adaptation to an unlabeled target domain: AdaBN and DANN.

The target is the data set under `adapt.target_shift` (unlabeled: the shifted training images;
evaluated on the shifted test images) or the images under `adapt.target_root` (evaluated on
themselves when its class folders match the run's classes). Target labels are only ever used
to report target accuracy.

- AdaBN (Li et al. 2016): after training, BatchNorm statistics are re-estimated on target
  images; the weights stay as trained.
- DANN (Ganin et al. 2016): a domain classifier on the head's input features, behind a
  gradient-reversal layer, learns to tell source from target while the body learns features
  that it cannot tell apart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from tuneterm.config import RunConfig
from tuneterm.engine.kinds.classify.data import Split, apply_shift, batches
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained


def target_domain(cfg: RunConfig, tr: Trained) -> tuple[Split, Split | None]:
    """(unlabeled target images for adaptation, labelled target images for evaluation)."""
    a, data = cfg.adapt, tr.data
    train, test, val = data.train, data.test, data.val
    assert isinstance(train, Split) and isinstance(test, Split) and isinstance(val, Split)
    if a.target_root:
        from tuneterm.engine.kinds.classify.data import _cache, scan_folder

        files, names, classes = scan_folder(Path(a.target_root).expanduser())
        labelled = set(classes) <= set(data.classes)
        labels = torch.tensor(
            [data.classes.index(n) if labelled else -1 for n in names], dtype=torch.long
        )
        split = _cache(Split(labels, None, files), cfg.data.image_size, 0)
        return split, (split if labelled else None)

    def shifted(s: Split) -> Split:
        if s.images is not None:
            return Split(s.labels, apply_shift(s.images, a.target_shift))
        return Split(s.labels, None, s.files, a.target_shift)

    return shifted(train), (shifted(test) if len(test) else shifted(val))


@torch.no_grad()
def adabn(model: nn.Module, split: Split, tr: Trained) -> None:
    """Re-estimate every BatchNorm's running mean and variance on `split` (cumulative average)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    for xb, yb in batches(split, tr.cfg.train.batch_size * 2, tr.cfg.data.image_size):
        x, _ = tr.to_device((xb, yb))
        model(x)
    model.eval()


class AdaBN(Technique):
    name = "adabn"
    section = "adapt"

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.adapt.method == "adabn"

    def finish(self, tr: Trained) -> dict[str, Any]:
        unlabeled, labelled = target_domain(self.cfg, tr)
        out: dict[str, Any] = {}
        if labelled is not None:
            out["target_acc_source_only"] = tr.evaluate(labelled)["acc"]
        adabn(tr.model, unlabeled, tr)
        if labelled is not None:
            out["target_acc"] = tr.evaluate(labelled)["acc"]
        tr.ctx.emit("adapt", method="adabn", target_images=len(unlabeled), **out)
        return out


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    out: torch.Tensor = GradReverse.apply(x, scale)
    return out


def _in_features(head: nn.Module) -> int:
    for m in head.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError("adapt.method = dann: the head has no Linear or Conv2d layer")


class Dann(Technique):
    name = "dann"
    section = "adapt"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.domain: nn.Module | None = None
        self.feats: torch.Tensor | None = None
        self.capture = False
        self.gen = torch.Generator().manual_seed(cfg.train.seed + 11)

    def state_dict(self) -> dict[str, Any]:
        # The domain classifier is not part of the model: save it, and where the target draws are.
        out: dict[str, Any] = {"gen": self.gen.get_state()}
        if self.domain is not None:
            out["domain"] = self.domain.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        if self.domain is not None and "domain" in state:
            self.domain.load_state_dict(state["domain"])

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.adapt.method == "dann"

    def _hook(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if self.capture:
            f = args[0]
            self.feats = f.flatten(2).mean(2) if f.ndim > 2 else f

    def setup(self, tr: Trained) -> None:
        self.target, self.labelled = target_domain(self.cfg, tr)
        head = tr.model.get_submodule(tr.head_name)
        d = _in_features(head)
        self.domain = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 1)).to(tr.device)
        head.register_forward_pre_hook(self._hook)

    def param_groups(self, tr: Trained) -> list[dict[str, Any]]:
        assert self.domain is not None
        return [{"params": list(self.domain.parameters()), "lr": tr.cfg.train.lr}]

    def epoch_start(self, tr: Trained) -> None:
        assert self.domain is not None
        self.domain.train()

    def loss(
        self,
        tr: Trained,
        x: torch.Tensor,
        y: torch.Tensor,
        logits: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        assert self.domain is not None
        src = self._last()
        idx = torch.randint(len(self.target), (len(x),), generator=self.gen)
        assert self.target.images is not None
        xt, _ = tr.to_device((self.target.images[idx], self.target.labels[idx]))
        self.capture = True
        tr.model(xt)
        self.capture = False
        tgt = self._last()
        # Ganin's schedule: the reversal strength rises from 0 to 1 over training.
        p = tr.state.step / max(1, tr.total_steps)
        lam = 2.0 / (1.0 + math.exp(-10 * p)) - 1.0
        feats = grad_reverse(torch.cat([src, tgt]).float(), lam)
        dom = self.domain(feats).squeeze(1)
        target = torch.cat([torch.zeros(len(src)), torch.ones(len(tgt))]).to(dom.device)
        return loss + self.cfg.adapt.weight * F.binary_cross_entropy_with_logits(dom, target)

    def _last(self) -> torch.Tensor:
        assert self.feats is not None
        f, self.feats = self.feats, None
        return f

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.capture = True  # the next forward is the source batch: keep its features
        return x, y

    def finish(self, tr: Trained) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.labelled is not None:
            out["target_acc"] = tr.evaluate(self.labelled)["acc"]
        tr.ctx.emit("adapt", method="dann", target_images=len(self.target), **out)
        return out
