"""The tiny real run config the tests and bench share: resnet18 without pretrained weights on
the embedded digits data, three classes at 16 px, small enough for a 2-core CI machine."""

from __future__ import annotations

__all__ = ["tiny_toml"]


def tiny_toml(
    *,
    name: str | None = "tiny",
    per_class: int = 40,
    epochs: int = 4,
    batch_size: int | None = 16,
    lr: float | None = 0.003,
    log_every: int | None = 2,
    threads: int | None = 1,
) -> str:
    """The config text; a `None` key is left out (the config's default applies). Tests edit the
    text with str.replace("epochs = 4", ...), so the lines keep the form `key = value`."""
    run = f'[run]\nname = "{name}"\n\n' if name is not None else ""
    train = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "log_every": log_every,
        "threads": threads,
    }
    train_lines = "".join(f"{k} = {v}\n" for k, v in train.items() if v is not None)
    return (
        f"{run}[model]\n"
        'name = "resnet18"\n'
        'weights = "none"\n\n'
        "[data]\n"
        'dataset = "digits"\n'
        'classes = ["0", "1", "2"]\n'
        f"per_class = {per_class}\n"
        "image_size = 16\n\n"
        f"[train]\n{train_lines}"
    )
