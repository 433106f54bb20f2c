"""Text classification: a Hugging Face sequence classifier fine-tuned on labelled texts
(engine/textcls/), plus `predict` for the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import TEXT_TASK, ConfigError, ConfigIssue, RunConfig
from tuneterm.runs.predict import PredictError, PredictInput
from tuneterm.store.runs import RunStore

if TYPE_CHECKING:
    from torch import nn

    from tuneterm.engine.process import EngineProcess


def validate(cfg: RunConfig, store: RunStore | None) -> None:
    """The model's files can be found without a hang, the data reads, the teacher fits."""
    from tuneterm.engine.data import DataError
    from tuneterm.engine.registry import device_issues
    from tuneterm.engine.textcls import data
    from tuneterm.engine.textcls.models import TextModelError, resolve

    issues: list[ConfigIssue] = []
    try:
        resolve(cfg.text.model)
    except TextModelError as exc:
        issues.append(ConfigIssue("text.model", cfg.text.model, str(exc)))
    try:
        data.build(cfg.data, cfg.text, cfg.train.seed)
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
    if store.config(run_id).run.task != TEXT_TASK:
        raise ValueError(f"run {run_id} is not a {TEXT_TASK} run")
    best = store.checkpoint_dir(run_id) / "best.pt"
    if not best.is_file():
        raise ValueError(f"run {run_id} has no {best.name}")
    return best


def _load_teacher(cfg: RunConfig, store: RunStore, classes: list[str], tokenizer: Any) -> nn.Module:
    """A text run's best model; it must know the same classes and share the tokenizer's vocab,
    since it reads the student's token ids."""
    from tuneterm.engine import checkpoint
    from tuneterm.engine.textcls.models import TextModelError, from_checkpoint

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


def train(engine: EngineProcess, cfg: RunConfig, resume: bool) -> int:
    import torch
    import transformers

    from tuneterm.engine.textcls import data as textdata
    from tuneterm.engine.textcls.models import build, load_tokenizer, resolve_for
    from tuneterm.engine.textcls.trainer import TextTrainer

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    source = resolve_for(cfg.text)
    tokenizer = load_tokenizer(source)
    data = textdata.build(cfg.data, cfg.text, cfg.train.seed)
    for split in (data.train, data.val, data.test):
        textdata.tokenize(split, tokenizer, cfg.text)
    engine.record_data(cfg.data.dataset, data.classes, data.counts)
    model = build(source, len(data.classes), pretrained=cfg.model.weights != "none")
    teacher = (
        _load_teacher(cfg, engine.store, data.classes, tokenizer) if cfg.distill.teacher else None
    )
    trainer = TextTrainer(cfg, model, tokenizer, data, engine, teacher)

    def final(result: dict[str, Any]) -> dict[str, Any]:
        split = result["split"]
        return {
            **{f"{split}_{k}": result[k] for k in ("loss", "acc", "f1")},
            "per_class": result["per_class"],  # recall: what image runs call per-class acc
            "report": result["report"],
            "confusion": result["confusion"],
            "best_epoch": result["epoch"],
        }

    return engine.drive(
        trainer,
        resume,
        model=f"{cfg.text.model} ({source.ref})",
        final=final,
        extra_versions={"transformers": transformers.__version__},
        data=data.counts,
        classes=data.classes,
    )


def predict(best: Path, inputs: PredictInput) -> list[dict[str, Any]]:
    """Labels and scores of `inputs.texts` from a text run's best checkpoint (`tuneterm predict
    RUN --text ...`)."""
    import torch

    from tuneterm.config import TextSection
    from tuneterm.engine import checkpoint
    from tuneterm.engine.textcls.data import collate
    from tuneterm.engine.textcls.models import from_checkpoint

    texts, top_k = inputs.texts, inputs.top_k
    if not texts or inputs.images:
        raise PredictError('text runs predict on texts: give one or more --text "..."')
    ck = checkpoint.load(best)
    if ck.get("task") != TEXT_TASK:
        raise PredictError(f"{best} is not a {TEXT_TASK} checkpoint; --text needs one")
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
