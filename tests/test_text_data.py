"""Text classification without an engine: config checks, data readers and their errors, the
generated set, metrics, the model wrapper (real MiniLM) and offline behaviour."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tuneterm.config import ConfigError, DataSection, loads
from tuneterm.tasks.text import TextSection

TEXT = '[run]\ntask = "text"\n[data]\ndataset = "topics"\n'


def issues(text: str, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        loads(text, overrides or [])
    return str(exc.value)


def test_config_keeps_tasks_and_their_options_apart(tmp_path: Path) -> None:
    assert loads(TEXT, ["train.metric=val_f1", "early_stop.metric=val_f1"]).text.model == "minilm"
    msg = issues('[train]\nmetric = "val_f1"\n')
    assert 'train.metric = "val_f1": only for run.task = "text"' in msg
    assert 'data.dataset = "csv": a text data set' in issues('[data]\ndataset = "csv"\n')
    assert 'data.dataset = "digits": not a text data set' in issues(TEXT, ["data.dataset=digits"])
    msg = issues(TEXT, ["data.dataset=csv"])
    assert 'data.root = "": required when data.dataset = csv (a .csv file)' in msg
    msg = issues(TEXT, ["data.dataset=jsonl", f"data.root={tmp_path}/none.jsonl"])
    assert "none.jsonl" in msg and "no such file" in msg
    msg = issues(TEXT, ["mix.mixup=0.2", "data.augment=light"])
    assert "mix.mixup = 0.2: not supported for run.task = text" in msg
    assert 'data.augment = "light": not supported' in msg
    assert "text.padding" in issues(TEXT, ["text.padding=longest"])


def test_configs_and_runs_written_as_text_classify_read_as_text(tmp_path: Path) -> None:
    """The kind was called "text-classify" before it was "text": old files still read."""
    import json

    from tuneterm import tasks
    from tuneterm.config import run_config
    from tuneterm.runs.lifecycle import new_run
    from tuneterm.store import RunStore
    from tuneterm.tasks import metric_spec_of_run

    old = TEXT.replace('"text"', '"text-classify"')
    assert loads(old).run.task == "text"
    assert tasks.get("text-classify") is tasks.get("text")
    store = RunStore(tmp_path / "runs")
    run = store.create(new_run(loads(TEXT)))
    config = run.path / "config.toml"
    config.write_text(config.read_text().replace('task = "text"', 'task = "text-classify"'))
    meta = json.loads((run.path / "meta.json").read_text())
    meta["task"] = meta["metrics"]["task"] = "text-classify"
    (run.path / "meta.json").write_text(json.dumps(meta))
    assert 'task = "text-classify"' in config.read_text()  # the old name, as stored
    assert run_config(store, run.id).run.task == "text"
    info = store.info(run.id)
    assert info.meta is not None and tasks.find(info.meta.task) is tasks.get("text")
    assert metric_spec_of_run(info.meta).metric("val_f1").label == "F1"


def test_missing_packages_are_named_before_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneterm.runs import launcher
    from tuneterm.store import RunStore

    store = RunStore(tmp_path / "runs")
    # A module set to None in sys.modules cannot be imported: as if it were not installed.
    monkeypatch.setitem(sys.modules, "transformers", None)
    cfg = loads(TEXT)  # a text run's config still reads (e.g. a run made on another machine)
    with pytest.raises(ConfigError) as exc:
        launcher.start(store, cfg)
    assert 'run.task = "text": needs transformers' in str(exc.value)
    assert "pip install 'tuneterm[text]'" in str(exc.value)
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ConfigError) as exc:
        launcher.start(store, loads("[lora]\nenabled = true\n"))
    assert "lora.enabled = true: needs peft" in str(exc.value)
    assert "pip install 'tuneterm[lora]'" in str(exc.value)
    assert not store.root.exists() or not any(store.root.iterdir())  # nothing created


def _build(tmp_path: Path, dataset: str, root: Path, **text: Any) -> Any:
    from tuneterm.engine.kinds.text.data import build

    d = DataSection.model_validate({"dataset": dataset, "root": str(root)})
    return build(d, TextSection.model_validate(text), seed=0)


def test_readers_name_file_line_and_column(tmp_path: Path) -> None:
    from tuneterm.engine.data import DataError

    good = tmp_path / "good.csv"
    good.write_text(
        "body,topic\n" + "".join(f'"text number {i}, ok",{"ab"[i % 2]}\n' for i in range(20))
    )
    data = _build(tmp_path, "csv", good, text_column="body", label_column="topic")
    assert data.classes == ["a", "b"] and data.counts["examples"] == 20
    assert len(data.train) + len(data.val) + len(data.test) == 20
    with pytest.raises(DataError, match=r"good.csv: line 1: no column 'text' for text.text_column"):
        _build(tmp_path, "csv", good)
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,a\n  ,b\n")
    with pytest.raises(DataError, match=r"bad.csv:3: column 'text' is empty"):
        _build(tmp_path, "csv", bad)
    jl = tmp_path / "x.jsonl"
    jl.write_text('{"text": "fine", "label": "a"}\n{"text": "broken"\n')
    with pytest.raises(DataError, match=r"x.jsonl:2: not JSON"):
        _build(tmp_path, "jsonl", jl)
    jl.write_text('{"text": "fine", "label": "a"}\n{"txt": "no text key", "label": "b"}\n')
    with pytest.raises(DataError, match=r"x.jsonl:2: no text.text_column 'text'"):
        _build(tmp_path, "jsonl", jl)
    folder = tmp_path / "tf"
    for cls in ("pos", "neg"):
        (folder / cls).mkdir(parents=True)
        for i in range(6):
            (folder / cls / f"{i}.txt").write_text(f"{cls} example {i}")
    assert _build(tmp_path, "textfolder", folder).classes == ["neg", "pos"]
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match=r"tf/empty: class folder has no .txt files"):
        _build(tmp_path, "textfolder", folder)


def test_generated_topics_are_deterministic_and_split_stratified() -> None:
    from tuneterm.engine.kinds.text.data import build, topics

    assert [e.text for e in topics()[:50]] == [e.text for e in topics()[:50]]
    d = DataSection.model_validate({"dataset": "topics", "per_class": 10})
    data = build(d, TextSection(), seed=3)
    assert data.classes == ["food", "sports", "tech", "weather"]
    assert data.train.labels.bincount().tolist() == [10, 10, 10, 10]
    assert data.val.labels.bincount().tolist() == [30, 30, 30, 30]  # 20% of 150 per class
    assert data.counts == {"examples": 600, "train": 40, "val": 120, "test": 120}


def test_scores_match_sklearn() -> None:
    import numpy as np
    from sklearn.metrics import f1_score

    from tuneterm.engine.kinds.text.task import scores

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    conf = np.zeros((3, 3), dtype=np.int64)
    np.add.at(conf, (y, p), 1)
    out = scores(conf, ["a", "b", "c"])
    assert out["f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert out["acc"] == pytest.approx((y == p).mean())
    assert out["report"]["b"]["support"] == int((y == 1).sum())


def test_truncation_off_rejects_long_texts(tmp_path: Path) -> None:
    from tuneterm.engine.data import DataError
    from tuneterm.engine.kinds.text.data import tokenize
    from tuneterm.engine.kinds.text.models import load_tokenizer, resolve

    tok = load_tokenizer(resolve("minilm"))
    f = tmp_path / "t.csv"
    f.write_text("text,label\n" + "".join(f"short {i},{'xy'[i % 2]}\n" for i in range(10)))
    f.write_text(f.read_text() + "one two three four five six seven eight nine ten,x\n")
    data = _build(tmp_path, "csv", f)
    text = TextSection(max_length=8, truncation=False)
    with pytest.raises(DataError, match=r"t.csv:12: text is 12 tokens, over text.max_length = 8"):
        for split in (data.train, data.val, data.test):
            tokenize(split, tok, text)
    tokenize(data.train, tok, TextSection(max_length=8))
    assert max(len(i) for i in data.train.ids) <= 8


def test_minilm_stages_lora_targets_and_freezing() -> None:
    import torch

    from tuneterm.config import TrainSection
    from tuneterm.engine.kinds.text.models import build, resolve
    from tuneterm.engine.models import stages
    from tuneterm.engine.optim import param_groups
    from tuneterm.engine.techniques.lora import targets

    model = build(resolve("minilm"), 3)
    body = stages(model, model.head_name)
    assert [s.name for s in body] == ["embeddings", *(f"layer{i}" for i in range(6)), "top"]
    assert model.head_name == "hf.classifier"
    proj = targets(model, model.head_name)
    assert len(proj) == 18 and all(p.rsplit(".", 1)[1] in ("query", "key", "value") for p in proj)
    t = TrainSection(lr=1.0, layer_decay=0.5)
    lrs = sorted({g["lr"] for g in param_groups(model, t, model.head_name)})
    assert lrs == [0.5**k for k in range(8, -1, -1)]  # 8 body stages below the head
    x = torch.tensor([[[101, 2054, 102], [1, 1, 1]]])
    assert model(x).shape == (1, 3)


def test_hub_name_offline_fails_fast_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneterm.engine.kinds.text.models import TextModelError, resolve

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TUNETERM_OFFLINE", "1")
    # Fast means it never reaches for the network (a timing bound would fail on a slow
    # machine): any connection attempt fails the test.
    tried: list[object] = []

    def no_network(*args: object, **kw: object) -> None:
        tried.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(TextModelError) as exc:
        resolve("someorg/tiny-bert")
    assert tried == []
    msg = str(exc.value)
    assert "not in the Hugging Face cache" in msg and str(tmp_path / "hub") in msg
    assert "hf download someorg/tiny-bert --local-dir DIR" in msg and 'text.model = "DIR"' in msg
    with pytest.raises(TextModelError, match="no such model folder"):
        resolve(str(tmp_path / "nowhere"))
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(TextModelError, match=r"has no config\.json"):
        resolve(str(tmp_path / "notamodel"))


class _Ctx:
    """The loop's RunContext over a folder; asks to stop once `stop_at` steps are done."""

    def __init__(self, ckpt_dir: Path, stop_at: int = 0) -> None:
        self.ckpt_dir, self.stop_at, self.events = ckpt_dir, stop_at, []  # type: ignore[var-annotated]
        self.trainer: Any = None

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.events.append((kind, fields))

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return bool(self.stop_at) and self.trainer.state.step >= self.stop_at


def _lora_trainer_parts(sets: list[str]) -> tuple[Any, Any, Any, Any]:
    """(config, model source, tokenizer, tokenized data) of a small LoRA text run."""
    from tuneterm.engine.kinds.text import data as textdata
    from tuneterm.engine.kinds.text.models import load_tokenizer, resolve

    cfg = loads(
        TEXT,
        [
            *sets,
            "data.val_fraction=0.04",
            "data.test_fraction=0.04",
            "train.threads=1",
            "text.max_length=16",
            "lora.enabled=true",
        ],
    )
    source = resolve("minilm")
    tok = load_tokenizer(source)
    data = textdata.build(cfg.data, TextSection.of(cfg), 0)
    for split in (data.train, data.val, data.test):
        textdata.tokenize(split, tok, TextSection.of(cfg))
    return cfg, source, tok, data


def test_stop_at_a_step_and_resume_from_last(tmp_path: Path) -> None:
    from tuneterm.engine.kinds.text.models import build
    from tuneterm.engine.kinds.text.task import trainer as TextTrainer

    cfg, source, tok, data = _lora_trainer_parts(
        ["data.per_class=4", "train.epochs=2", "train.batch_size=8", "train.metric=val_f1"]
    )

    def trainer(ctx: _Ctx) -> Any:
        ctx.trainer = TextTrainer(cfg, build(source, 4), tok, data, ctx)
        return ctx.trainer

    first = trainer(_Ctx(tmp_path, stop_at=1))
    assert first.total_steps == 4 and first.fit() == "stopped"
    assert ("checkpoint", {"which": "last", "step": 1, "epoch": 0, "batch": 1}) in first.ctx.events
    again = trainer(_Ctx(tmp_path))
    again.restore(tmp_path / "last.pt")
    assert (again.state.step, again.state.batch) == (1, 1)
    assert again.fit() == "completed" and again.state.step == 4
    vals = [f for k, f in again.ctx.events if k == "val"]
    assert [v["epoch"] for v in vals] == [1, 2] and all("val_f1" in v for v in vals)
    result = again.test()
    assert set(result["report"]) == set(data.classes) and result["split"] == "test"


def test_data_wait_is_per_log_interval(tmp_path: Path) -> None:
    """Each train event's data_wait is that interval's share of waiting (it was once summed
    over the epoch, so it crept past 1.0 and raised a false input-bound warning)."""

    from tuneterm.engine.kinds.text.models import build
    from tuneterm.engine.kinds.text.task import trainer as TextTrainer

    cfg, source, tok, data = _lora_trainer_parts(
        ["data.per_class=6", "train.epochs=1", "train.batch_size=4", "train.log_every=1"]
    )
    ctx = _Ctx(tmp_path)
    tr = TextTrainer(cfg, build(source, 4), tok, data, ctx)
    plain = tr.task.batches

    def slow(*args: Any, **kw: Any) -> Any:  # every batch takes 100 ms to arrive
        for batch in plain(*args, **kw):
            time.sleep(0.1)
            yield batch

    tr.task.batches = slow  # type: ignore[attr-defined]
    assert tr.train_epoch()
    waits = [f["data_wait"] for k, f in ctx.events if k == "train"]
    # Summed over the epoch, the 5th interval would report >= 5 x 0.1 s of waiting against
    # one interval's span (0.1 s + a step of well under 0.4 s): more than 1.
    assert len(waits) >= 5 and all(0.0 < w <= 1.0 for w in waits), waits
