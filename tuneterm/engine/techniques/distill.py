"""Knowledge distillation: loss = (1-a)·CE + a·T²·KL(student/T ‖ teacher/T).

The teacher is another run's best checkpoint (`run:<id>`, full or LoRA) or a pretrained model
(`torchvision:<name>`, `timm:<name>`, `hf:<name>`: pretrained weights, head replaced). It runs
in eval mode under
no_grad, with its parameters frozen, so it costs one forward pass per batch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from tuneterm.config import ModelSection, RunConfig
from tuneterm.engine.techniques.base import Technique

if TYPE_CHECKING:
    from tuneterm.engine.techniques.base import Trained


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch."""
    t = temperature
    return (
        F.kl_div(
            F.log_softmax(student.float() / t, 1),
            F.log_softmax(teacher.float() / t, 1),
            reduction="batchmean",
            log_target=True,
        )
        * t
        * t
    )


def load_teacher(spec: str, num_classes: int, runs_root: Path | None) -> nn.Module:
    from tuneterm.engine.kinds.classify.models import build_model, from_checkpoint

    source, _, name = spec.partition(":")
    if source in ("torchvision", "timm", "hf"):  # a pretrained model with a new head
        section = ModelSection.model_validate(
            {"source": source, "name": name, "weights": "DEFAULT"}
        )
        return build_model(section, num_classes, None).model
    from tuneterm.store.runs import RunStore

    if spec.endswith(".pt"):
        path = Path(spec).expanduser()
    elif runs_root is None:
        raise ValueError(f"distill.teacher = {spec!r}: needs a runs folder")
    else:
        store = RunStore(runs_root)
        path = store.checkpoint_dir(store.resolve(spec[4:])) / "best.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if int(ck["num_classes"]) != num_classes:
        raise ValueError(
            f"distill.teacher = {spec!r}: the teacher has {ck['num_classes']} classes, "
            f"this run {num_classes}"
        )
    return from_checkpoint(path)


class Distill(Technique):
    name = "distill"
    section = "distill"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.teacher: nn.Module | None = None

    @classmethod
    def wanted(cls, cfg: RunConfig) -> bool:
        return bool(cfg.distill.teacher)

    def setup(self, tr: Trained) -> None:
        root = tr.ctx.ckpt_dir.parent.parent if hasattr(tr.ctx, "ckpt_dir") else None
        teacher = (
            self.teacher
            or tr.teacher  # a teacher the kind loaded (text runs)
            or load_teacher(self.cfg.distill.teacher, len(tr.data.classes), root)
        )
        teacher.requires_grad_(False)
        self.teacher = teacher.to(tr.device).eval()

    def loss(self, tr: Trained, x: Tensor, y: Tensor, logits: Tensor, loss: Tensor) -> Tensor:
        assert self.teacher is not None
        with torch.no_grad():
            t_logits = self.teacher(x)
        a = self.cfg.distill.alpha
        return (1 - a) * loss + a * kd_loss(logits, t_logits, self.cfg.distill.temperature)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.teacher is not None:
            out["teacher_params"] = sum(p.numel() for p in self.teacher.parameters())
        return out
