"""The run schema: one pydantic section per TOML table, each field with its default, range
and description. Choice lists come from `tuneterm.config.choices`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tuneterm.config.choices import (
    AUGMENTS,
    DEVICES,
    MODEL_SOURCES,
    OPTIMIZERS,
    RDZV_BACKENDS,
    SCHEDULERS,
    Activation,
    AdaptMethod,
    CompileMode,
    DistBackend,
    FreezeStrategy,
    HeadKind,
    Mode,
    OnOff,
    Precision,
    Shift,
    one_of,
)
from tuneterm.config.operations import HealthSection, ScriptSection, SlurmSection
from tuneterm.config.renamed import kind_name
from tuneterm.config.section import Section as _Section
from tuneterm.config.section import kind_sections
from tuneterm.store.ids import check_name


class RunSection(_Section):
    name: str = Field("", description="Display name; empty means derived from the model")
    task: str = Field(
        "classify", description="What the run learns: a kind of run from the task registry"
    )
    tags: list[str] = Field(default_factory=list, description="Free-form labels for filtering")
    notes: str = Field("", description="Free text kept with the run")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        return check_name(v)

    @field_validator("task")
    @classmethod
    def _renamed(cls, v: str) -> str:
        return kind_name(v)


class ModelSection(_Section):
    source: str = Field(
        "torchvision",
        description=f"Where the classifier comes from: {one_of(MODEL_SOURCES)}; a timm/ or hf/ "
        "prefix on model.name says the same",
    )
    name: str = Field(
        "resnet18",
        description="A classifier of model.source: resnet18 (torchvision), timm/convnext_tiny, "
        "hf/ORG/NAME or hf/<save_pretrained folder>",
    )
    weights: str = Field(
        "DEFAULT",
        description='Pretrained weights: "DEFAULT", a weights name such as "IMAGENET1K_V1", '
        'or "none" for random init (every source); timm: also a local .pth/.safetensors file',
    )
    init: str = Field(
        "",
        description='Start from a checkpoint: "" (none), "run:<id or prefix>" for that run\'s '
        "best checkpoint, or a path to a .pt file",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the new head")
    init_seed: int = Field(
        -1,
        ge=-1,
        description="Seeds the weights drawn at build time (the new head; a model without "
        "weights); -1: train.seed. Fixed, runs of other seeds start from the same weights",
    )


class DataSection(_Section):
    dataset: str = Field(
        "digits",
        description="A data set the run's kind reads (digits: embedded, no download; shapes: "
        "generated; folder: ImageFolder at data.root)",
    )
    # Text runs also take "topics", "csv", "jsonl", "textfolder" (see TextSection.model).
    root: str = Field(
        "",
        description="For dataset = folder: a folder with train/ [val/ test/]; coco: the image "
        "folder; voc: the folder holding Annotations/ and JPEGImages/; hf: a save_to_disk "
        "folder, an imagefolder, a parquet file or folder, or a hub name",
    )
    image_column: str = Field("image", description="For dataset = hf: the column of images")
    label_column: str = Field(
        "label", description="For dataset = hf (image runs): the column of class labels"
    )
    split: str = Field(
        "",
        description="For dataset = hf: the split to train on; empty = train (validation/val "
        "and test splits, when present, are used as they are)",
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
    split_seed: int = Field(
        -1,
        ge=-1,
        description="Seeds the train/val/test split and the per_class/fraction draw; -1: "
        "train.seed. Fixed, runs of other seeds hold out the same images (a soup needs that)",
    )
    image_size: int = Field(
        32,
        ge=0,
        le=1024,
        description="Images are resized to this square size; 0 = the model's own (timm's "
        "pretrained config, the HF config; torchvision: 224)",
    )
    shift: Shift = Field(
        "none",
        description=f"A fixed domain shift applied to every image: {one_of(Shift)} "
        "(contrast: low contrast on a brighter background)",
    )
    augment: str = Field(
        "none",
        description=f"Training augmentation preset: {one_of(AUGMENTS)}",
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

    @field_validator("image_size")
    @classmethod
    def _size_ok(cls, v: int) -> int:
        if 0 < v < 8:
            raise ValueError("must be >= 8 (or 0: the model's own input size)")
        return v


class TrainSection(_Section):
    epochs: int = Field(5, ge=1, le=100_000, description="Passes over the training data")
    batch_size: int = Field(64, ge=1, le=65_536, description="Images per step")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="Peak learning rate")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="Weight decay")
    optimizer: str = Field("adamw", description=one_of(OPTIMIZERS))
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    scheduler: str = Field("cosine", description=one_of(SCHEDULERS))
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps before the schedule")
    precision: Precision = Field(
        "auto", description="auto = bf16 on GPUs that support it, else fp16 on CUDA, fp32 on CPU"
    )
    seed: int = Field(0, ge=0, description="Seeds data splits, shuffling and init")
    device: str = Field("auto", description=one_of(DEVICES))
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
        raise ValueError(f"must be {one_of(DEVICES)}")


class HeadSection(_Section):
    kind: HeadKind = Field("linear", description=f"The new head: {one_of(HeadKind)}")
    hidden: list[int] = Field(default_factory=list, description="MLP hidden sizes, e.g. [256]")
    activation: Activation = Field("relu", description=f"MLP activation: {one_of(Activation)}")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout after each MLP hidden layer")

    @field_validator("hidden")
    @classmethod
    def _hidden_ok(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("hidden sizes must be >= 1")
        return v


class FreezeSection(_Section):
    strategy: FreezeStrategy = Field(
        "none",
        description=f"{one_of(FreezeStrategy)}: none = full fine-tuning, first_n = the first "
        "`stages`, gradual = unfreezing head to stem",
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
    mode: Mode = Field("min", description=f"{one_of(Mode)}: which way is better")
    patience: int = Field(3, ge=1, description="Epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as better")


class DistillSection(_Section):
    teacher: str = Field(
        "",
        description='"" (off), "run:<id>" (its best checkpoint), "torchvision:<model>", '
        '"timm:<model>", "hf:<model>" or a .pt checkpoint file',
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
    method: AdaptMethod = Field(
        "none", description=f"Domain adaptation to an unlabeled target: {one_of(AdaptMethod)}"
    )
    target_shift: Shift = Field("none", description="Target domain = the data set with this shift")
    target_root: str = Field("", description="Or a target folder (class folders or flat images)")
    weight: float = Field(
        1.0,
        ge=0.0,
        description="dann, cdan: scale of the reversed gradient; coral, mmd: weight of their loss",
    )


class DistSection(_Section):
    """Multi-node rendezvous, passed through to torchrun (see tuneterm/engine/ddp.py)."""

    nnodes: int = Field(1, ge=1, le=4096, description="Nodes; > 1 needs a rendezvous endpoint")
    rdzv_backend: str = Field(
        "c10d", description=f"torchrun --rdzv-backend: {one_of(RDZV_BACKENDS)}"
    )
    rdzv_endpoint: str = Field(
        "", description="torchrun --rdzv-endpoint HOST:PORT (c10d); required when nnodes > 1"
    )
    rdzv_id: str = Field("", description="torchrun --rdzv-id; empty = the run id")
    master_addr: str = Field(
        "", description="static: torchrun --master-addr (the launching node is --node-rank 0)"
    )
    master_port: int = Field(0, ge=0, le=65535, description="static: --master-port; 0 = unset")
    backend: DistBackend = Field(
        "auto",
        description=f"Process-group backend: {one_of(DistBackend)}; auto = nccl on CUDA, "
        "gloo on CPU",
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
        True,
        description="Fused optimizer kernels wherever torch has them (the CPU too); "
        "off, or where it has none: the foreach kernels",
    )
    pin_memory: bool = Field(True, description="Pinned host batches, non-blocking copies (CUDA)")
    persistent_workers: bool = Field(
        True, description="Keep DataLoader workers alive across epochs (streamed folders)"
    )
    prefetch: int = Field(4, ge=1, le=64, description="Batches each DataLoader worker prefetches")
    compile: CompileMode = Field(
        "off", description=f"torch.compile the training model: {one_of(CompileMode)}"
    )
    async_checkpoint: OnOff = Field(
        "auto",
        description=f"{one_of(OnOff)}: write each epoch's checkpoints in a background thread "
        "while training goes on (one host copy of the model and optimizer state); auto: on a "
        "GPU, or where a CPU core is left over from training's threads",
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


class RunConfig(_Section):
    """Every section of a run. The built-in ones are fields; each kind's own table (`[detect]`)
    is registered by its kind (`config.section.KindSection`) and kept as an extra, validated
    here, read back with `DetectSection.of(cfg)`. An unknown table is still an unknown key."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

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
    health: HealthSection = Field(default_factory=HealthSection)  # type: ignore[arg-type]
    script: ScriptSection = Field(default_factory=ScriptSection)  # type: ignore[arg-type]
    slurm: SlurmSection = Field(default_factory=SlurmSection)  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _kind_tables(cls, data: Any) -> Any:
        """Each registered kind's table as its section (defaults when absent)."""
        if not isinstance(data, dict):
            return data
        unknown = [k for k in data if k not in cls.model_fields and k not in kind_sections()]
        if unknown:
            raise ValueError(f"unknown section [{unknown[0]}]")
        tables = {t: s.model_validate(data.get(t) or {}) for t, s in kind_sections().items()}
        return {**data, **tables}

    @classmethod
    def tables(cls) -> list[tuple[str, type[BaseModel]]]:
        """Every section, built-in and registered, in the order a config file lists them (the
        kinds' tables before [health] and [script])."""
        builtin = [(n, f.annotation) for n, f in cls.model_fields.items()]
        at = next(i for i, (n, _) in enumerate(builtin) if n == "health")
        kinds = list(kind_sections().items())
        return [(n, t) for n, t in [*builtin[:at], *kinds, *builtin[at:]] if isinstance(t, type)]

    def section(self, name: str) -> BaseModel:
        """The section called `name`, a built-in or a kind's table (its defaults when the kind
        was registered after this config was made)."""
        if name not in type(self).model_fields:
            return kind_sections()[name].of(self)
        found = getattr(self, name)
        assert isinstance(found, BaseModel)
        return found

    @model_validator(mode="before")
    @classmethod
    def _script_kind(cls, data: Any) -> Any:
        """A config with a [script] command is a script run, which reads its own data."""
        if not isinstance(data, dict):
            return data
        script, run = data.get("script"), data.get("run")
        if isinstance(script, dict) and script.get("command") and not (run or {}).get("task"):
            data = {**data, "run": {**(run or {}), "task": "script"}}
        run = data.get("run")
        if isinstance(run, dict) and run.get("task") == "script":
            dataset = (data.get("data") or {}).get("dataset")
            if not dataset:
                data = {**data, "data": {**(data.get("data") or {}), "dataset": "script"}}
        return data
