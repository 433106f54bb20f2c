"""A soup's recipe, top to bottom: build the parents' kind of task from the soup's config (its
data and its network), read each parent's best.pt, score each on validation, mix them
(uniform or greedy, mix.py) with BatchNorm statistics re-estimated on training batches, then
record the soup like a trained run: a "val" event, best.pt, the test of it, the final figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from tuneterm import tasks
from tuneterm.config import RunConfig
from tuneterm.engine import checkpoint, kinds
from tuneterm.engine.ddp import Dist
from tuneterm.engine.device import pick_device, pick_precision
from tuneterm.engine.kinds import Setup, Task
from tuneterm.engine.kinds.soup import mix
from tuneterm.engine.recipe import Run, record_data, record_start
from tuneterm.engine.trainer import Trainer
from tuneterm.tasks.soup.section import SoupSection

BN_BATCHES = 100  # training batches that re-estimate BatchNorm statistics, at most


class Kitchen:
    """The parents' task and a Trainer around it: scores weights on validation (the soup's
    process and bench/outcomes_soup.py)."""

    def __init__(self, trainer: Trainer, metric: str, partial: bool = False) -> None:
        self.trainer, self.task = trainer, trainer.task
        self.metric, self.partial = metric, partial
        self.key = metric.removeprefix("val_")
        self.last: dict[str, Any] = {}

    def forwards(self) -> Iterator[Any]:
        tr, task = self.trainer, self.task
        for i, batch in enumerate(task.train_batches(0, 0, (0, 1))):
            if i >= BN_BATCHES:
                return
            x, y = task.to_device(batch)

            def forward(model: torch.nn.Module, x: Any = x, y: Any = y) -> Any:
                with tr.autocast():
                    return task.loss(model, x, y)

            yield forward

    def score(self, state: mix.State, n: int) -> tuple[float, mix.State]:
        model = self.trainer.model
        model.load_state_dict(state, strict=not self.partial)
        if n > 1 and any(k.endswith("running_mean") for k in state):
            mix.recalibrate(model, self.forwards())
        self.last = self.trainer.evaluate(self.trainer.data.val)
        value = float(self.last[self.key])
        kept = model.state_dict()
        return value, {k: kept[k].detach().clone() for k in state}


def _build(engine: Run, cfg: RunConfig) -> tuple[Trainer, Task, RunConfig]:
    """The parents' kind of task from the soup's config, and a Trainer around it."""
    sec = SoupSection.of(cfg)
    inner = cfg.model_copy(deep=True)
    inner.run.task = sec.kind
    device = pick_device(cfg.train.device)
    dist = Dist(engine.rank, device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    setup = Setup(
        device,
        dist,
        pick_precision(cfg.train.precision, device),
        engine.store,
        phase=lambda name: engine.emit("phase", name=name),
    )
    task = kinds.load(sec.kind).build(inner, setup)
    record_data(engine, cfg.data.dataset, task.data)
    return Trainer(inner, task, engine, dist), task, inner


def run(engine: Run, cfg: RunConfig) -> int:
    sec = SoupSection.of(cfg)
    trainer, task, inner = _build(engine, cfg)
    spec = tasks.get(sec.kind)
    metric = sec.metric or spec.best_metric(inner.train.metric)
    higher = spec.metric(metric).higher
    record_start(
        engine,
        trainer.device,
        extra_versions=task.started.versions,
        params=trainer.params,
        total_steps=0,
        epochs=1,
        metrics=tasks.run_metric_spec(inner),
        data=task.data.counts,
        classes=task.data.classes,
        init_hash=_parents_hash(engine, sec.parents),
    )
    engine.set_status("running")
    cks = {p: checkpoint.load(engine.store.checkpoint_dir(p) / "best.pt") for p in sec.parents}
    kitchen = Kitchen(trainer, metric, bool(cks[sec.parents[0]].get("partial")))
    candidates = []
    for p, ck in cks.items():
        own, state = kitchen.score(ck["model"], 1)
        engine.log(f"ingredient {p}: {metric} {own:.4f}")
        candidates.append((p, own, state))
    if sec.recipe == "greedy":
        soup = mix.greedy(candidates, kitchen.score, higher)
    else:
        soup = mix.uniform(candidates, kitchen.score)
    for t in soup.tried[1:] if sec.recipe == "greedy" else []:
        engine.log(f"greedy: + {t.run} -> {metric} {t.score:.4f} ({'kept' if t.kept else 'left'})")
    engine.log(f"{sec.recipe} soup of {len(soup.members)}: {metric} {soup.score:.4f}")
    return _record(engine, trainer, kitchen, soup, sec, metric)


def _parents_hash(engine: Run, parents: list[str]) -> str:
    from tuneterm.store.meta import UnreadableRun, load_meta

    try:
        return load_meta(engine.store.run_dir(parents[0]) / "meta.json").init_hash
    except UnreadableRun:
        return ""


def _record(
    engine: Run,
    trainer: Trainer,
    kitchen: Kitchen,
    soup: mix.Soup,
    sec: SoupSection,
    metric: str,
) -> int:
    """The soup as a trained run records itself: val, best.pt, test, final figures."""
    kitchen.score(soup.state, 1)  # the soup's weights, as scored, in the model
    val = kitchen.last
    event = {
        m.name: val[key]
        for m in trainer.spec.val_reported
        if (key := m.name.removeprefix("val_")) in val
    }
    engine.emit("val", epoch=1, step=0, **event)
    about = {
        "recipe": sec.recipe,
        "metric": metric,
        "members": soup.members,
        "tried": [vars(t) for t in soup.tried],
    }
    best = {"metric": metric, "value": event[metric], "epoch": 1, "step": 0, **event}
    st = trainer.state
    st.epoch, st.best = 1, best
    checkpoint.save(
        engine.ckpt_dir / "best.pt", {**trainer.model_state(), "best": best, "soup": about}
    )
    engine.emit("checkpoint", which="epoch", step=0, epoch=1, best=True, best_epoch=1)
    engine.progress(force=True, epoch=1, best=best)
    result = trainer.test()
    engine.emit("test", **result)
    engine.meta.final = trainer.final(result)
    engine.meta.techniques = {"soup": about}
    engine.set_status("completed")
    return 0
