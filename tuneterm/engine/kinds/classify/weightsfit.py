"""Does a weights file fit a timm architecture? The launch check of `model.weights = FILE`."""

from __future__ import annotations

from pathlib import Path

import torch


def timm_file_problem(name: str, file: Path) -> str | None:
    """Why a weights file does not fit timm model `name` (other keys or shapes), or None. The
    model is built on the `meta` device: no memory, no compute."""
    import timm

    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in timm.create_model(name).state_dict().items()}
    try:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), "pt") as fh:
                have = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        else:
            state = torch.load(file, map_location="meta", weights_only=True)
            state = state.get("state_dict", state.get("model", state))
            have = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    except Exception as exc:  # a damaged or foreign file: torch and safetensors raise many types
        return f"cannot read as weights ({type(exc).__name__}: {str(exc)[:120]})"
    body = {k for k in want if k in have and have[k] == want[k]}
    if len(body) < 0.5 * len(want):
        wrong = [k for k in want if k in have and have[k] != want[k]]
        detail = f"{len(set(want) - set(have))} of {len(want)} tensors missing"
        if wrong:
            detail += f", {len(wrong)} of another shape (e.g. {wrong[0]})"
        return f"weights for another architecture than {name} ({detail})"
    return None
