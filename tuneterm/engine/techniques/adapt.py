"""Domain adaptation to an unlabeled target domain: AdaBN, and DANN, CORAL and MMD.

The target is the data set under `adapt.target_shift` (unlabeled: the shifted training images;
evaluated on the shifted test images) or the images under `adapt.target_root`: a flat folder of
images, or class folders. Target labels are only ever used to report target accuracy, and only
when the target's class folders are classes of the run.

- AdaBN (Li et al. 2016): after training, BatchNorm statistics are re-estimated on target
  images; the weights stay as trained.
- DANN (Ganin et al. 2016), CDAN (Long et al. 2018), CORAL (Sun & Saenko 2016), MMD (Long et
  al. 2015): every training batch is a balanced pair, the source batch and as many target
  images, in ONE forward pass (BatchNorm sees both domains, as it will at test time; targets
  carry the ignore label, so the classification loss is the source's alone). A term on the
  head's input features pulls the domains together: an adversarial domain classifier behind a
  gradient-reversal layer (DANN), the same conditioned on the class predictions, so that the
  domains are matched class by class rather than as two clouds (CDAN), the distance between
  feature covariances (CORAL), or a multi-kernel MMD (MMD).

Every epoch's `val` event carries `domain_loss` and `domain_acc`: the domain classifier's
loss and accuracy on the training batches (for CORAL and MMD, a probe trained on detached
features that does not touch the model). A domain accuracy near 50% means the features no
longer tell the domains apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from tuneterm.config import RunConfig
from tuneterm.engine.kinds.classify.data import IMAGE_EXTS, Split, batches, scan_folder
from tuneterm.engine.kinds.classify.shifts import apply_shift
from tuneterm.engine.techniques.align import (
    condition,
    coral_loss,
    grad_reverse,
    mmd_loss,
    reversal_coefficient,
)
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained

__all__ = ["AdaBN", "Cdan", "Coral", "Dann", "Mmd", "adabn", "grad_reverse", "target_domain"]

IGNORE = -100  # F.cross_entropy's ignore_index: target rows add nothing to the class loss


def scan_target(folder: Path) -> tuple[list[Path], list[str]]:
    """(files, class name of each or "") of a target folder: class folders, else flat images."""
    if any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()):
        files, names, _ = scan_folder(folder)
        return files, names
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        from tuneterm.engine.data import DataError

        raise DataError(
            f"adapt.target_root = {str(folder)!r}: no images "
            f"({', '.join(sorted(IMAGE_EXTS))}) and no class folders"
        )
    return files, [""] * len(files)


def target_domain(cfg: RunConfig, tr: Trained) -> tuple[Split, Split | None]:
    """(target images for adaptation, decoded in RAM; labelled target images to score, or
    None when the target has no labels of the run's classes)."""
    from tuneterm.engine.kinds.classify.data import _cache

    a, data = cfg.adapt, tr.data
    train, test, val = data.train, data.test, data.val
    assert isinstance(train, Split) and isinstance(test, Split) and isinstance(val, Split)
    size = cfg.data.image_size
    if a.target_root:
        files, names = scan_target(Path(a.target_root).expanduser())
        labelled = all(n in data.classes for n in names)
        labels = [data.classes.index(n) if labelled else -1 for n in names]
        split = _cache(Split(torch.tensor(labels, dtype=torch.long), None, files), size, 0)
        return split, (split if labelled else None)

    def shifted(s: Split) -> Split:
        if s.images is not None:
            return Split(s.labels, apply_shift(s.images, a.target_shift))
        return _cache(Split(s.labels, None, s.files, a.target_shift), size, 0)

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


def _in_features(head: nn.Module) -> int:
    for m in head.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError("adapt.method: the head has no Linear or Conv2d layer")


def domain_classifier(d: int, hidden: int = 256) -> nn.Module:
    """Features -> one logit (target vs source): two hidden layers, as in Ganin et al."""
    return nn.Sequential(
        nn.Linear(d, hidden),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(hidden, 1),
    )


class FeatureAlign(Technique):
    """What DANN, CORAL and MMD share: the balanced source + target batch in one forward, the
    head-input features of both, the domain classifier and its metrics. A subclass says how
    the features are pulled together (`align`)."""

    section = "adapt"
    method: ClassVar[str] = ""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.domain: nn.Module | None = None
        self.feats: torch.Tensor | None = None
        self.capture = False
        self.n_src = 0
        self.gen = torch.Generator().manual_seed(cfg.train.seed + 11)
        self.sums = torch.zeros(3)  # domain loss, correct, images, this epoch
        self.last: dict[str, float] = {}

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return cfg.adapt.method == cls.method

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

    def _hook(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if self.capture:
            f = args[0]
            self.feats = f.flatten(2).mean(2) if f.ndim > 2 else f.flatten(1)
            self.capture = False

    def setup(self, tr: Trained) -> None:
        self.tr = tr
        self.target, self.labelled = target_domain(self.cfg, tr)
        head = tr.model.get_submodule(tr.head_name)
        dim = self.domain_input(_in_features(head), len(tr.data.classes), tr.device)
        self.domain = domain_classifier(dim).to(tr.device)
        head.register_forward_pre_hook(self._hook)
        self.sums = torch.zeros(3, device=tr.device)

    def domain_input(self, features: int, classes: int, device: torch.device) -> int:
        """The width of what the domain classifier reads: the features' (all but CDAN, which
        also builds its projection here when the outer product is too wide)."""
        return features

    def param_groups(self, tr: Trained) -> list[dict[str, Any]]:
        assert self.domain is not None
        return [{"params": list(self.domain.parameters()), "lr": tr.cfg.train.lr}]

    def epoch_start(self, tr: Trained) -> None:
        assert self.domain is not None
        self.domain.train()
        self.sums.zero_()

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The source batch, then as many target images (labels IGNORE): one forward."""
        assert self.target.images is not None
        idx = torch.randint(len(self.target), (len(x),), generator=self.gen)
        xt, _ = self.tr.to_device((self.target.images[idx], self.target.labels[idx]))
        self.n_src, self.capture = len(x), True
        return torch.cat([x, xt.to(x.dtype)]), torch.cat([y, torch.full_like(y, IGNORE)])

    def loss(
        self,
        tr: Trained,
        x: torch.Tensor,
        y: torch.Tensor,
        logits: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        assert self.domain is not None and self.feats is not None
        feats, self.feats = self.feats.float(), None
        n = self.n_src
        p = tr.state.step / max(1, tr.total_steps)
        dom_in, term = self.align(feats[:n], feats[n:], p, logits.float())
        dom = self.domain(dom_in).squeeze(1)
        is_target = torch.cat([torch.zeros(n), torch.ones(len(feats) - n)]).to(dom.device)
        dom_loss = F.binary_cross_entropy_with_logits(dom, is_target)
        with torch.no_grad():  # on the device: read once an epoch
            correct = ((dom > 0).float() == is_target).sum()
            self.sums += torch.stack(
                [dom_loss.detach() * len(dom), correct, dom.new_tensor(len(dom))]
            )
        return loss + self.cfg.adapt.weight * term + dom_loss

    def align(
        self, src: torch.Tensor, tgt: torch.Tensor, p: float, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the domain classifier's input, the alignment term to add, times adapt.weight), from
        the features of the source and target rows, training progress p and all rows' logits."""
        raise NotImplementedError

    def epoch_end(self, tr: Trained, val: dict[str, Any]) -> bool:
        loss_sum, correct, n = self.sums.tolist()
        if n:
            self.last = {"domain_loss": loss_sum / n, "domain_acc": correct / n}
            val["extra"].update(self.last)
        return False

    def finish(self, tr: Trained) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.last)  # the last epoch's domain figures
        if self.labelled is not None:
            out["target_acc"] = tr.evaluate(self.labelled)["acc"]
        tr.ctx.emit("adapt", method=self.method, target_images=len(self.target), **out)
        return out


class Dann(FeatureAlign):
    """The domain classifier is the adversary: the reversed gradient of its loss trains the
    body to confuse it, with the strength ramped by Ganin's schedule (times adapt.weight)."""

    name = method = "dann"

    def align(
        self, src: torch.Tensor, tgt: torch.Tensor, p: float, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # The classifier's own loss is added once (unweighted, so it always learns); the body
        # gets its gradient reversed and scaled by weight * lambda(p), through the layer.
        scale = self.cfg.adapt.weight * reversal_coefficient(p)
        feats = grad_reverse(self.condition(torch.cat([src, tgt]), logits), scale)
        return feats, feats.new_zeros(())

    def condition(self, feats: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return feats


class Cdan(Dann):
    """Conditional adversarial adaptation (Long et al. 2018): the domain classifier reads the
    features times the class probabilities (their outer product, or a fixed random projection
    of it when that is wider than MULTILINEAR_MAX), so it can tell the domains apart class by
    class and the body must match each class's features across domains, not just the clouds.
    The gradient flows through both factors, reversed."""

    name = method = "cdan"
    MULTILINEAR_MAX = 8192
    RANDOM_DIM = 1024

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.proj: tuple[torch.Tensor, torch.Tensor] | None = None

    def domain_input(self, features: int, classes: int, device: torch.device) -> int:
        if features * classes <= self.MULTILINEAR_MAX:
            return features * classes
        gen = torch.Generator().manual_seed(self.cfg.train.seed + 13)  # the same on resume
        rf, rg = (torch.randn(k, self.RANDOM_DIM, generator=gen) for k in (features, classes))
        self.proj = (rf.to(device), rg.to(device))
        return self.RANDOM_DIM

    def condition(self, feats: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return condition(feats, logits.softmax(1), self.proj)


class Discrepancy(FeatureAlign):
    """Aligns by adding a measure of how far apart the two domains' features are (times
    adapt.weight); the domain classifier only probes them, on detached features."""

    def measure(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def align(
        self, src: torch.Tensor, tgt: torch.Tensor, p: float, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([src, tgt]).detach(), self.measure(src, tgt)


class Coral(Discrepancy):
    name = method = "coral"

    def measure(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return coral_loss(src, tgt)


class Mmd(Discrepancy):
    name = method = "mmd"

    def measure(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return mmd_loss(src, tgt)
