"""The one trainer: every kind of run trains here, through its task object (engine/kinds/).

The Trainer owns what is the same for every kind: the device, mixed precision, gradient
accumulation, DDP (`no_sync` on accumulation steps, the stop vote), `torch.compile`, the
optimizer and schedule, the techniques, the "train" events, validation scored by the kind's
spec, and checkpoints (engine/epochs.py). The hot path is `Trainer.train_epoch`: one screen,
one host sync per log interval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from tuneterm import tasks
from tuneterm.config import DataSection, RunConfig
from tuneterm.engine import checkpoint, epochs, faults
from tuneterm.engine.ddp import Dist, Rank, StopVote
from tuneterm.engine.device import autocast, cuda_speed, pick_device, pick_precision
from tuneterm.engine.epochs import RunContext, Scored, State, restore_training, training_state
from tuneterm.engine.guards import NanGuard
from tuneterm.engine.kinds import Data, Task
from tuneterm.engine.models import count_params
from tuneterm.engine.optim import impl_of, make_optimizer, make_scheduler
from tuneterm.engine.techniques import Techniques
from tuneterm.store.meta import INPUT_BOUND

__all__ = ["Timed", "Trainer", "cuda_speed", "input_hint", "pick_device", "pick_precision"]


def input_hint(
    wait_frac: float, streak: int, d: DataSection, streamed: bool, workers: int
) -> tuple[int, str | None]:
    """(the new streak of input-bound log intervals, a message on the third in a row)."""
    streak = streak + 1 if wait_frac >= INPUT_BOUND else 0
    if streak != 3:
        return streak, None
    hints = []
    if streamed:
        hints.append(f"raise data.workers (now {workers})")
        hints.append(f"raise data.cache_gb (now {d.cache_gb}) to decode images once into RAM")
    if d.augment != "none":
        hints.append(f'a lighter data.augment than "{d.augment}"')
    if not hints:
        hints.append("a larger train.batch_size")
    return streak, (
        f"input-bound: {wait_frac:.0%} of step time waiting for data; try " + ", ".join(hints)
    )


class Timed:
    """Batches, adding the time spent waiting for each one to `waited` (the data wait a log
    interval reports; the loop resets it)."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._it, self.waited = batches, 0.0

    def __iter__(self) -> Timed:
        return self

    def __next__(self) -> Any:
        t0 = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self.waited += time.perf_counter() - t0


class Trainer:
    """Trains one task object: the same loop, precision, DDP and checkpoints for every kind."""

    def __init__(
        self, cfg: RunConfig, task: Task, ctx: RunContext, dist: Dist | None = None
    ) -> None:
        t, sp = cfg.train, cfg.speed
        self.cfg, self.ctx, self.task = cfg, ctx, task
        self.spec = tasks.get(cfg.run.task)
        self.data: Data = task.data
        self.head_name, self.init, self.teacher = task.head_name, task.init, task.teacher
        self.device = dist.device if dist is not None else pick_device(t.device)
        # One process, or one rank of a distributed run (engine/ddp.py): `self.model` is the
        # plain module (evaluated, checkpointed, averaged by EMA); `self.net` trains it, as
        # DistributedDataParallel when there are several ranks.
        self.dist = dist if dist is not None else Dist(Rank(), self.device)
        self.shard = (self.dist.rank.rank, self.dist.rank.world)
        self.amp_dtype = pick_precision(t.precision, self.device)
        self.model: torch.nn.Module = task.model.to(self.device)
        if t.sync_bn and self.dist.on:
            if self.device.type == "cuda":
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            else:
                ctx.emit(
                    "log",
                    level="warning",
                    msg="train.sync_bn: SyncBatchNorm needs CUDA; "
                    "each CPU process keeps its own BatchNorm statistics",
                )
        self.steps_per_epoch = max(1, task.steps_per_epoch(self.shard))
        self.total_steps = self.steps_per_epoch * t.epochs
        self.state = State()
        self.tech = Techniques(cfg)
        self.tech.setup(self)  # freezing, adapters, teacher, EMA copy: before the optimizer
        self.model.to(self.device)
        task.speed(sp, self.model)
        self.opt = make_optimizer(
            self.model,
            t,
            self.device,
            self.head_name,
            include_frozen=cfg.freeze.strategy == "gradual",
            extra=self.tech.param_groups(self),
            fused=sp.fused_optimizer,
        )
        self.opt_impl = impl_of(self.opt)  # "fused", "foreach" or "for-loop": the start event
        self.accum = t.grad_accum
        self.sched = make_scheduler(self.opt, t, -(-self.steps_per_epoch // self.accum) * t.epochs)
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.net: torch.nn.Module = self.model
        if self.dist.on:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.vote = StopVote(self.dist)
        # The training forward: compiled when asked (the module itself stays uncompiled, so
        # checkpoints keep plain parameter names and evaluation needs no recompilation).
        self.forward: Any = self.net
        if sp.compile != "off":
            self.forward = torch.compile(self.net, mode=sp.compile)
        self.input_streak = 0  # consecutive log intervals that mostly waited for data
        self.nan = NanGuard(cfg.health, ctx)
        self.params = self.count_params()
        self.trainable = [p for g in self.opt.param_groups for p in g["params"]]
        self.stepped = False  # whether this process made its first optimizer step
        background = epochs.background_writes(sp.async_checkpoint, self.device)
        self.writer = checkpoint.Writer(background)  # checkpoint files (engine/epochs.py)

    def count_params(self) -> dict[str, Any]:
        return count_params(self.model)

    def to_device(self, batch: Any) -> tuple[Any, Any]:
        """A host batch as (inputs, targets) on the device (the task's normalisation)."""
        return self.task.to_device(batch)

    def autocast(self) -> Any:
        return autocast(self.device, self.amp_dtype)

    # -- the hot path ---------------------------------------------------------------------
    def train_epoch(self) -> bool:
        """One epoch from `state.batch` on. Returns False if a stop was requested."""
        st, t, tech, task = self.state, self.cfg.train, self.tech, self.task
        self.net.train()
        tech.epoch_start(self)  # may freeze BatchNorm (eval) or unfreeze stages
        loss_sum = torch.zeros((), device=self.device)
        n_loss, seen = 0, 0
        tick = time.perf_counter()
        it = Timed(faults.slow(task.train_batches(st.epoch, st.batch, self.shard)))
        for batch in it:
            x, y = tech.batch(*task.to_device(batch))
            boundary = (st.batch + 1) % self.accum == 0 or st.batch + 1 == self.steps_per_epoch
            with self._sync(boundary):
                with self.autocast():
                    loss, logits = task.loss(self.forward, x, y)
                    loss = tech.loss(self, x, y, logits, loss)
                finite = self.nan.keep(loss)  # health.on_nan = "skip": a host sync per step
                if finite:
                    self.scaler.scale(loss / self.accum).backward()
            if boundary:
                self.optimizer_step()
                tech.step_end(self)  # e.g. the EMA update
                if not self.stepped:
                    self._first_step()
            if finite:
                loss_sum += loss.detach()
                n_loss += 1
            seen += len(x)
            st.step += 1
            st.batch += 1
            if st.step % t.log_every == 0:  # the only host sync: once per log interval
                now = time.perf_counter()
                avg, seen = self._mean_loss(loss_sum, n_loss, seen)
                self.log_train(avg, seen / (now - tick), it.waited / (now - tick))
                self.nan.check(avg, st)  # health.on_nan = "stop": fails the run on a NaN
                loss_sum.zero_()
                n_loss, seen, it.waited, tick = 0, 0, 0.0, now
            # Every rank polls once per step and gets the same answer (engine/ddp.py).
            stop = self.vote.poll(self.ctx.stop_requested())
            if stop and st.batch % self.accum == 0:
                return False  # on an optimizer-step boundary: no accumulated gradient is lost
        if n_loss:
            now = time.perf_counter()
            avg, seen = self._mean_loss(loss_sum, n_loss, seen)
            span = max(now - tick, 1e-9)
            self.log_train(avg, seen / span, it.waited / span)
            self.nan.check(avg, st)
        self.vote.settle()  # before the evaluation's collectives; a stop then ends the next step
        return True

    def optimizer_step(self) -> None:
        """Unscale and clip the gradients (train.grad_clip), step through the GradScaler,
        clear the gradients, advance the schedule."""
        clip = self.cfg.train.grad_clip
        if clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.trainable, clip, foreach=True)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()

    def _first_step(self) -> None:
        """The run's timing marks its first optimizer step (runs/timing.py). On CUDA it waits
        for the step once, so the mark says when the work was done, not queued."""
        self.stepped = True
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.ctx.emit("phase", name="first_step", step=self.state.step + 1)

    def _sync(self, boundary: bool) -> Any:
        """DDP all-reduces gradients only on optimizer steps, not on accumulation steps."""
        if isinstance(self.net, torch.nn.parallel.DistributedDataParallel) and not boundary:
            return self.net.no_sync()
        return nullcontext()

    def _mean_loss(self, loss_sum: torch.Tensor, n: int, seen: int) -> tuple[float, int]:
        """The interval's mean loss and examples seen, over every rank."""
        if not self.dist.on:
            return (loss_sum / n).item(), seen
        counts = torch.tensor([n, seen], dtype=torch.float32, device=loss_sum.device)
        total = torch.cat([loss_sum.float().view(1), counts])
        self.dist.all_reduce_sum(total)
        loss, count, examples = total.tolist()
        return loss / count, int(examples)

    def log_train(self, loss: float, per_s: float, wait_frac: float) -> None:
        """One log interval: the "train" event, meta.json's progress, and the input-bound
        warning on the third interval in a row that mostly waited for data."""
        st = self.state
        fields: dict[str, Any] = {
            "step": st.step,
            "epoch": st.epoch + 1,
            "loss": loss,
            "lr": self.opt.param_groups[self.task.lr_group]["lr"],
            "examples_s": round(per_s, 2 if per_s < 100 else 1),
            "data_wait": round(wait_frac, 3),
        }
        peak: dict[str, Any] = {}
        if self.device.type == "cuda":
            peak["gpu_mem_peak"] = torch.cuda.max_memory_allocated(self.device)
            fields.update(peak)
        self.ctx.emit("train", **fields)
        self.ctx.progress(
            step=st.step,
            epoch=st.epoch,
            last_loss=loss,
            throughput=fields["examples_s"],
            data_wait=fields["data_wait"],
            **peak,
        )
        self.input_streak, msg = input_hint(
            wait_frac, self.input_streak, self.cfg.data, self.task.streamed, self.task.workers
        )
        if msg:
            self.ctx.emit("log", level="warning", msg=msg)

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, split: Any, full: bool = False, model: torch.nn.Module | None = None
    ) -> dict[str, Any]:
        """The task's metrics of `model` (the trained one by default) on `split`."""
        net = model if model is not None else self.model
        net.eval()
        self.dist.broadcast_buffers(net)
        return self.task.evaluate(net, split, full)

    def validate(self) -> Scored:
        """The "val" event's fields and the number best.pt is picked by, named by the spec."""
        net = self.tech.eval_model(self.model)  # the EMA model when it is kept
        val = self.evaluate(self.data.val, model=net)
        val["extra"] = {}
        stop = self.tech.epoch_end(self, val)  # early stopping; EMA scores the other model
        event = {
            m.name: val[key]
            for m in self.spec.val_reported
            if (key := m.name.removeprefix("val_")) in val
        }
        best = self.spec.best_metric(self.cfg.train.metric)
        return Scored(
            event={**event, **val["extra"]},
            metric=best,
            value=event[best],
            # every figure of the best epoch (compare's best.val_top5, best.domain_acc...)
            best={k: v for k, v in {**event, **val["extra"]}.items() if isinstance(v, int | float)},
            higher=self.spec.metric(best).higher,
            stop=stop,
            net=net,
        )

    def test(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on the test split (val if there is no test split): the
        model as it is when it is the best one (`tests_in_memory`), else best.pt read back."""
        if self.tests_in_memory():
            split, name = epochs.test_split(self.data)
            res = self.evaluate(split, full=True)
            return {"split": name, **res, "epoch": self.state.best["epoch"]}
        best, split, name = epochs.load_best(self)
        res = self.evaluate(split, full=True)
        return {"split": name, **res, "epoch": best["best"]["epoch"]}

    def tests_in_memory(self) -> bool:
        """One process whose last epoch scored best, on the trained model itself (not an EMA
        copy): the model in memory is what best.pt holds."""
        st = self.state
        return (
            not self.dist.on
            and bool(st.best)
            and st.best.get("epoch") == st.epoch
            and self.tech.eval_model(self.model) is self.model
        )

    def settle(self, quiet: bool = False) -> None:
        """Until every checkpoint file is on disk (the last one may be written during the
        test); raises the write's error unless `quiet`."""
        self.writer.wait(quiet)

    def final(self, result: dict[str, Any]) -> dict[str, Any]:
        """meta.json's `final`: the spec's test metrics (named after the split scored), what
        the task reports in full, and what techniques add (e.g. target-domain accuracy)."""
        split = result["split"]
        out = {
            f"{split}_{key}": result[key]
            for m in self.spec.test_metrics
            if (key := m.name.removeprefix("test_")) in result
        }
        out.update({k: result[k] for k in ("per_class", "report", "confusion") if k in result})
        return {**out, "best_epoch": result["epoch"], **self.tech.finish(self)}

    # -- checkpoints (engine/epochs.py writes them) -------------------------------------------
    def model_state(self, net: torch.nn.Module | None = None) -> dict[str, Any]:
        return self.task.checkpoint(net if net is not None else self.model, self.tech)

    def last_state(self) -> dict[str, Any] | None:
        """Every rank calls this at the same point; rank 0 alone writes (with every rank's RNG
        state, so a resumed run draws what it would have)."""
        rngs = self.dist.gather(checkpoint.rng_state())
        if not self.dist.rank.main:
            return None
        return {
            **self.model_state(),
            **training_state(self),
            "rng": rngs[0],
            "rng_ranks": rngs,
            "techniques": self.tech.state_dict(),
        }

    def restore(self, path: Path) -> None:
        ck = checkpoint.load(path)
        self.model.load_state_dict(ck["model"], strict=not ck.get("partial"))
        self.tech.load_state_dict(ck.get("techniques", {}))
        restore_training(self, ck)
        ranks = ck.get("rng_ranks") or []
        r = self.dist.rank.rank
        checkpoint.set_rng_state(ranks[r] if len(ranks) == self.dist.rank.world else ck["rng"])

    def barrier(self) -> None:
        self.dist.barrier()

    def fit(self, overlap_test: bool = False, clock: epochs.Clock = time.perf_counter) -> str:
        """Train to the end or until stopped; returns "completed" or "stopped". With
        `overlap_test` the last checkpoint may still be writing: `settle` before the end.
        `clock` times the checkpoint cadence and writes (see `epochs.fit`)."""
        self.writer.clock = clock
        return epochs.fit(self, self.writer, overlap_test, clock)
