"""Model helpers every kind shares: the error a model raises, weight downloads with a timeout,
a body's stages (for freezing and layer-wise learning rates), and parameter counts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tuneterm.engine.registry import weights_file


class ModelError(RuntimeError):
    pass


def init_rng(seed: int) -> Any:
    """Where a model is built: its random weights drawn from `seed` (model.init_seed), the
    global RNG left as it was for what follows; `seed < 0`: nothing changes (train.seed)."""
    import contextlib

    if seed < 0:
        return contextlib.nullcontext()
    forked = torch.random.fork_rng(devices=[])

    @contextlib.contextmanager
    def seeded() -> Any:
        with forked:
            torch.manual_seed(seed)
            yield

    return seeded()


def download_weights(member: object) -> None:
    """Fetch into torchvision's cache with a socket timeout, so no network never means a hang."""
    import socket

    wf = weights_file(member)
    if wf.cached:
        return
    if os.environ.get("TUNETERM_OFFLINE", "") not in ("", "0"):
        raise ModelError(wf.missing_message())
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        wf.path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(wf.url, str(wf.path), progress=False)
    except Exception as exc:
        raise ModelError(f"{wf.missing_message()} (download failed: {exc})") from None
    finally:
        socket.setdefaulttimeout(old)


@dataclass
class Stage:
    name: str
    params: list[str]  # parameter names


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def stages(model: nn.Module, head_name: str) -> list[Stage]:
    """The body's stages from stem to top (the head excluded), for freezing and lr decay.

    Top-level children in order; a child that holds most of the body and has several children
    (VGG/MobileNet `features`, ViT `encoder.layers`) is split into them; leading leaf modules
    (conv1, bn1) merge into one stem stage. Parameters outside every child join the stem.
    A model may define its own (`body_stages()`, e.g. text models: embeddings, then layers)."""
    own = getattr(model, "body_stages", None)
    if callable(own):
        return list(own())
    head_prefix = head_name + "."
    total = max(
        1, sum(p.numel() for n, p in model.named_parameters() if not n.startswith(head_prefix))
    )

    def expand(name: str, m: nn.Module) -> list[tuple[str, nn.Module]]:
        kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children() if _numel(c)]
        if name and len(kids) > 2 and _numel(m) > total / 2:
            return kids
        big = [kc for kc in kids if _numel(kc[1]) > 0.9 * _numel(m)]
        if name and len(big) == 1:
            return expand(*big[0])
        return [(name, m)] if name else [x for k in kids for x in expand(*k)]

    groups: list[tuple[str, nn.Module]] = expand("", model)
    out: list[Stage] = []
    seen: set[str] = set()
    stem_open = True  # leading leaf modules (conv1, bn1) form one stem stage
    for name, m in groups:
        params = [f"{name}.{n}" for n, _ in m.named_parameters()]
        params = [n for n in params if not n.startswith(head_prefix)]
        if not params:
            continue
        seen.update(params)
        leaf = next(m.children(), None) is None
        if leaf and stem_open and out:
            out[-1].name += f"+{name}"
            out[-1].params += params
        else:
            out.append(Stage(name, params))
        stem_open = stem_open and leaf
    stray = [
        n for n, _ in model.named_parameters() if n not in seen and not n.startswith(head_prefix)
    ]
    if stray:
        if out:
            out[0].params = stray + out[0].params
        else:
            out.append(Stage("stem", stray))
    return out


def count_params(model: nn.Module) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "total": total,
        "trainable": trainable,
        "trainable_pct": round(100 * trainable / max(1, total), 3),
    }
