"""Text classification: a Hugging Face sequence classifier fine-tuned on labelled texts
(engine/kinds/text/), plus `predict` for the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import ConfigError, ConfigIssue, RunConfig, kind_name, run_config
from tuneterm.store.runs import RunStore
from tuneterm.tasks.predict import PredictError, PredictInput
from tuneterm.tasks.text import NAME, TextSection

if TYPE_CHECKING:
    from torch import nn

    from tuneterm.engine.kinds import Setup, Task


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    """The model's files can be found without a hang, the data reads, the teacher fits."""
    from tuneterm.config.launch import device_issues
    from tuneterm.engine.data import DataError
    from tuneterm.engine.kinds.text import data
    from tuneterm.engine.kinds.text.models import TextModelError, resolve

    issues: list[ConfigIssue] = []
    text = TextSection.of(cfg)
    try:
        resolve(text.model)
    except TextModelError as exc:
        issues.append(ConfigIssue("text.model", text.model, str(exc)))
    if cfg.data.dataset == "hf":
        from tuneterm.config import hfdata

        issues += hfdata.issues(
            cfg, image=False, text_columns=(text.text_column, text.label_column)
        )
    try:
        if not issues:
            data.build(cfg.data, text, cfg.train.seed)
    except DataError as exc:
        field = "data.root" if cfg.data.root else "data.dataset"
        issues.append(ConfigIssue(field, getattr(cfg.data, field.split(".")[1]), str(exc)))
    if cfg.distill.teacher:
        try:
            _teacher_checkpoint(cfg.distill.teacher, store)
        except (LookupError, ValueError) as exc:
            issues.append(ConfigIssue("distill.teacher", cfg.distill.teacher, str(exc)))
    issues.extend(device_issues(cfg))
    if issues:
        raise ConfigError(issues)


def _teacher_checkpoint(spec: str, store: RunStore | None) -> Path:
    if store is None:
        raise ValueError("needs a runs folder to look in")
    run_id = store.resolve(spec.removeprefix("run:"))
    if run_config(store, run_id).run.task != NAME:
        raise ValueError(f"run {run_id} is not a {NAME} run")
    best = store.checkpoint_dir(run_id) / "best.pt"
    if not best.is_file():
        raise ValueError(f"run {run_id} has no {best.name}")
    return best


def _load_teacher(cfg: RunConfig, store: RunStore, classes: list[str], tokenizer: Any) -> nn.Module:
    """A text run's best model; it must know the same classes and share the tokenizer's vocab,
    since it reads the student's token ids."""
    from tuneterm.engine import checkpoint
    from tuneterm.engine.kinds.text.models import TextModelError, from_checkpoint

    ck = checkpoint.load(_teacher_checkpoint(cfg.distill.teacher, store))
    if list(ck["classes"]) != classes:
        raise TextModelError(
            f"distill.teacher = {cfg.distill.teacher!r}: its classes {ck['classes']} are not "
            f"this run's {classes}"
        )
    model, teacher_tok = from_checkpoint(ck)
    if teacher_tok.get_vocab() != tokenizer.get_vocab():
        raise TextModelError(
            f"distill.teacher = {cfg.distill.teacher!r}: its tokenizer's vocabulary differs from "
            "text.model's; distillation here needs the same vocabulary"
        )
    return model


def build(cfg: RunConfig, setup: Setup) -> Task:
    """The tokenizer, the tokenized data, the model (and a distillation teacher, if any)."""
    import transformers

    from tuneterm.engine.kinds import Started
    from tuneterm.engine.kinds.text import data as textdata
    from tuneterm.engine.kinds.text.models import build as build_model
    from tuneterm.engine.kinds.text.models import load_tokenizer, resolve_for
    from tuneterm.engine.kinds.text.task import TextTask
    from tuneterm.engine.models import init_rng

    text = TextSection.of(cfg)
    source = resolve_for(text)
    tokenizer = load_tokenizer(source)
    data = textdata.build(cfg.data, text, cfg.train.seed)
    for split in (data.train, data.val, data.test):
        textdata.tokenize(split, tokenizer, text)
    with init_rng(cfg.model.init_seed):
        model = build_model(source, len(data.classes), pretrained=cfg.model.weights != "none")
    teacher = None
    if cfg.distill.teacher:
        assert setup.store is not None  # the engine always runs in a runs folder
        teacher = _load_teacher(cfg, setup.store, data.classes, tokenizer)
    started = Started(
        f"{text.model} ({source.ref})", versions={"transformers": transformers.__version__}
    )
    return TextTask(cfg, model, tokenizer, data, setup, teacher, started)


def predict(best: Path, inputs: PredictInput) -> list[dict[str, Any]]:
    """Labels and scores of `inputs.texts` from a text run's best checkpoint (`tuneterm predict
    RUN --text ...`)."""
    import torch

    from tuneterm.engine import checkpoint
    from tuneterm.engine.kinds.text.data import collate
    from tuneterm.engine.kinds.text.models import from_checkpoint

    texts, top_k = inputs.texts, inputs.top_k
    if not texts or inputs.images:
        raise PredictError('text runs predict on texts: give one or more --text "..."')
    ck = checkpoint.load(best)
    if kind_name(str(ck.get("task", ""))) != NAME:
        raise PredictError(f"{best} is not a {NAME} checkpoint; --text needs one")
    model, tokenizer = from_checkpoint(ck)
    text = TextSection.model_validate(ck["text"])
    classes = list(ck["classes"])
    ids = tokenizer(texts, truncation=True, max_length=text.max_length)["input_ids"]
    with torch.no_grad():
        probs = model(collate(ids, int(tokenizer.pad_token_id or 0))).softmax(1)
    k = max(1, min(top_k, len(classes)))
    out = []
    for t, p in zip(texts, probs, strict=True):
        top = p.topk(k)
        ranked = [
            {"label": classes[i], "score": round(float(s), 4)}
            for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
        out.append(
            {"text": t, "label": ranked[0]["label"], "score": ranked[0]["score"], "top": ranked}
        )
    return out
