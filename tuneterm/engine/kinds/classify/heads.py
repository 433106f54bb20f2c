"""The new classifier head: a Linear, or an MLP, put in place of a model's own."""

from __future__ import annotations

from torch import nn

from tuneterm.config import HeadSection


def _set_module(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def make_head(
    in_features: int, num_classes: int, head: HeadSection | None, conv: bool = False
) -> nn.Module:
    """A linear head, or an MLP (hidden sizes, activation, dropout) ending in the classes."""
    head = head or HeadSection.model_validate({})
    layers: list[nn.Module] = []
    width = in_features
    for hidden in head.hidden if head.kind == "mlp" else []:
        layers.append(nn.Conv2d(width, hidden, 1) if conv else nn.Linear(width, hidden))
        layers.append(ACTIVATIONS[head.activation]())
        if head.dropout > 0:
            layers.append(nn.Dropout(head.dropout))
        width = hidden
    layers.append(nn.Conv2d(width, num_classes, 1) if conv else nn.Linear(width, num_classes))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)
