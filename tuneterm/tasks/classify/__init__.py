"""Image classification: a classifier with a new head (engine/kinds/classify)."""

from __future__ import annotations

from tuneterm.tasks.spec import Metric, TaskSpec

# The classes of the embedded data sets, in label order (the engine generates them; the launch
# checks of data.classes and data.relabel read them without torch).
SHAPES = ("circle", "square", "triangle", "cross", "ring", "bar")
EMBEDDED: dict[str, tuple[str, ...]] = {
    "digits": tuple(str(i) for i in range(10)),
    "shapes": SHAPES,
}


SPEC = TaskSpec(
    name="classify",
    noun="classification",
    summary="image classification: torchvision, timm or Hugging Face classifiers, a new head",
    engine="tuneterm.engine.kinds.classify",
    catalog="tuneterm.tasks.classify.catalog:models",
    exporter="tuneterm.engine.kinds.classify.export:wrap",
    datasets=("digits", "shapes", "folder", "hf"),
    val_metrics=(
        Metric("val_acc", "acc"),
        Metric("val_top5", "top-5", min_classes=5),
    ),
    test_metrics=(
        Metric("test_acc", "acc"),
        Metric("test_top5", "top-5", min_classes=5),
        Metric("test_loss", "loss", higher=False, pane="loss"),
    ),
    select=("val_acc", "val_loss"),
    lr_finder="tuneterm.engine.kinds.classify.lr_find",
    multi_gpu=True,
)
