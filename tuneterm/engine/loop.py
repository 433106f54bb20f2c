"""The training loop. The hot path is `Trainer.train_epoch`: one screen, no host sync per step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from tuneterm.config import DataSection, RunConfig, SpeedSection
from tuneterm.engine import checkpoint, epochs
from tuneterm.engine.data import DataBundle, Split, batch_indices, batches, default_workers
from tuneterm.engine.ddp import Dist, Rank, StopVote, shard
from tuneterm.engine.epochs import RunContext, Scored, State, restore_training, training_state
from tuneterm.engine.models import Built, count_params
from tuneterm.engine.optim import make_optimizer, make_scheduler
from tuneterm.engine.techniques import Techniques
from tuneterm.engine.techniques.augment import transform_for
from tuneterm.store.meta import INPUT_BOUND


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


def optimizer_step(tr: Any) -> None:
    """One optimizer step of any trainer (`tr`: cfg, opt, sched, scaler, trainable): unscale
    and clip the gradients (train.grad_clip), step through the GradScaler, clear the
    gradients, advance the schedule."""
    clip = tr.cfg.train.grad_clip
    if clip > 0:
        tr.scaler.unscale_(tr.opt)
        torch.nn.utils.clip_grad_norm_(tr.trainable, clip, foreach=True)
    tr.scaler.step(tr.opt)
    tr.scaler.update()
    tr.opt.zero_grad(set_to_none=True)
    tr.sched.step()


def log_train(tr: Any, loss: float, per_s: float, wait_frac: float, lr: float) -> None:
    """One log interval of any trainer (`tr`: state, device, ctx, cfg, workers, streamed,
    input_streak): the "train" event, meta.json's progress, and the input-bound warning on the
    third interval in a row that mostly waited for data."""
    st = tr.state
    fields: dict[str, Any] = {
        "step": st.step,
        "epoch": st.epoch + 1,
        "loss": loss,
        "lr": lr,
        "img_s": round(per_s, 2 if per_s < 100 else 1),  # examples/s, whatever the task
        "data_wait": round(wait_frac, 3),
    }
    peak: dict[str, Any] = {}
    if tr.device.type == "cuda":
        fields["gpu_mem_peak"] = peak["gpu_mem_peak"] = torch.cuda.max_memory_allocated(tr.device)
    tr.ctx.emit("train", **fields)
    tr.ctx.progress(
        step=st.step,
        epoch=st.epoch,
        last_loss=loss,
        throughput=fields["img_s"],
        data_wait=fields["data_wait"],
        **peak,
    )
    tr.input_streak, msg = input_hint(
        wait_frac, tr.input_streak, tr.cfg.data, tr.streamed, tr.workers
    )
    if msg:
        tr.ctx.emit("log", level="warning", msg=msg)


def pick_device(name: str, rank: Rank | None = None) -> torch.device:
    """The device of this process; in a distributed run on CUDA, cuda:<local rank>."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if rank is not None and rank.distributed and name == "cuda":
        return torch.device("cuda", rank.local_rank)
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if name == "fp32" or (name == "auto" and device.type != "cuda"):
        return None
    if name == "fp16":
        return torch.float16
    if name == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cuda_speed(
    sp: SpeedSection,
    device: torch.device,
    model: torch.nn.Module | None,
    fixed_shapes: bool = True,
) -> bool:
    """Apply [speed]'s CUDA switches for a model about to train on `device` (nothing on a CPU):
    the cuDNN autotuner (only where batches keep one shape: it re-tunes on every new one), TF32,
    and channels_last for a convnet `model` (None: leave the layout alone). Returns whether
    inputs should be channels_last too."""
    if device.type != "cuda":
        return False
    torch.backends.cudnn.benchmark = sp.cudnn_benchmark and fixed_shapes
    torch.backends.cuda.matmul.allow_tf32 = sp.tf32
    torch.backends.cudnn.allow_tf32 = sp.tf32
    convnet = model is not None and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if model is not None and sp.channels_last and convnet:
        model.to(memory_format=torch.channels_last)
        return True
    return False


class Trainer:
    def __init__(
        self,
        cfg: RunConfig,
        built: Built,
        data: DataBundle,
        ctx: RunContext,
        init: Path | None = None,
        dist: Dist | None = None,
    ) -> None:
        t = cfg.train
        self.cfg, self.ctx, self.data = cfg, ctx, data
        self.device = dist.device if dist is not None else pick_device(t.device)
        # One process, or one rank of a distributed run (engine/ddp.py): `self.model` is the
        # plain module (evaluated, checkpointed, averaged by EMA); `self.net` trains it, as
        # DistributedDataParallel when there are several ranks.
        self.dist = dist if dist is not None else Dist(Rank(), self.device)
        self.shard = (self.dist.rank.rank, self.dist.rank.world)
        self.amp_dtype = pick_precision(t.precision, self.device)
        self.head_name = built.head_name
        self.model = built.model.to(self.device)
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
        self.mean = torch.tensor(built.mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(built.std, device=self.device).view(1, 3, 1, 1) * 255
        n_train = len(shard(torch.arange(len(data.train)), *self.shard))  # per rank
        self.steps_per_epoch = max(1, len(batch_indices(n_train, t.batch_size, None)))
        self.total_steps = self.steps_per_epoch * t.epochs
        self.state = State()
        self.tech = Techniques(cfg)
        lora = self.tech.get("lora")
        if lora is not None:
            lora.backbone_init = str(init) if init else ""  # type: ignore[attr-defined]
        self.tech.setup(self)  # freezing, adapters, teacher, EMA copy: before the optimizer
        self.model.to(self.device)
        sp = cfg.speed
        cuda = self.device.type == "cuda"
        self.channels_last = cuda_speed(sp, self.device, self.model)
        self.opt = make_optimizer(
            self.model,
            t,
            self.device,
            self.head_name,
            include_frozen=cfg.freeze.strategy == "gradual",
            extra=self.tech.param_groups(self),
            fused=sp.fused_optimizer,
        )
        self.accum = t.grad_accum
        self.opt_steps = -(-self.steps_per_epoch // self.accum) * t.epochs
        self.sched = make_scheduler(self.opt, t, self.opt_steps)
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.transform = transform_for(cfg.data.augment, cfg.data.image_size)
        self.workers = default_workers() if cfg.data.workers < 0 else cfg.data.workers
        self.pin = cuda and sp.pin_memory
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
        self.streamed = data.train.images is None  # decoded per epoch, not held in RAM
        self.params = self.count_params()
        self.trainable = [p for g in self.opt.param_groups for p in g["params"]]

    def count_params(self) -> dict[str, Any]:
        return count_params(self.model)

    def criterion(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # y is class indices, or class probabilities after MixUp/CutMix
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.train.label_smoothing)

    # -- device-side preprocessing --------------------------------------------------------
    def _prep(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        x = (x.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- the hot path ---------------------------------------------------------------------
    def train_epoch(self) -> bool:
        """One epoch from `state.batch` on. Returns False if a stop was requested."""
        st, t, tech = self.state, self.cfg.train, self.tech
        self.net.train()
        tech.epoch_start(self)  # may freeze BatchNorm (eval) or unfreeze stages
        loss_sum = torch.zeros((), device=self.device)
        n_loss, seen = 0, 0
        tick = time.perf_counter()
        it = Timed(
            batches(
                self.data.train,
                t.batch_size,
                self.cfg.data.image_size,
                shuffle_seed=t.seed,
                epoch=st.epoch,
                start_batch=st.batch,
                transform=self.transform,
                workers=self.workers,
                pin=self.pin,
                prefetch=self.cfg.speed.prefetch,
                persistent=self.cfg.speed.persistent_workers,
                shard=self.shard,
            )
        )
        for batch in it:
            x, y = tech.batch(*self._prep(*batch))
            boundary = (st.batch + 1) % self.accum == 0 or st.batch + 1 == self.steps_per_epoch
            with self._sync(boundary):
                with self._autocast():
                    logits = self.forward(x)
                    loss = tech.loss(self, x, y, logits, self.criterion(logits, y))
                self.scaler.scale(loss / self.accum).backward()
            if boundary:
                optimizer_step(self)
                tech.step_end(self)  # e.g. the EMA update
            loss_sum += loss.detach()
            n_loss += 1
            seen += len(y)
            st.step += 1
            st.batch += 1
            if st.step % t.log_every == 0:  # the only host sync: once per log interval
                now = time.perf_counter()
                avg, seen = self._mean_loss(loss_sum, n_loss, seen)
                self._log(avg, seen / (now - tick), it.waited / (now - tick))
                loss_sum.zero_()
                n_loss, seen, it.waited, tick = 0, 0, 0.0, now
            # Every rank polls once per step and gets the same answer (engine/ddp.py).
            stop = self.vote.poll(self.ctx.stop_requested())
            if stop and st.batch % self.accum == 0:
                return False  # on an optimizer-step boundary: no accumulated gradient is lost
        if n_loss:
            now = time.perf_counter()
            avg, seen = self._mean_loss(loss_sum, n_loss, seen)
            self._log(avg, seen / max(now - tick, 1e-9), it.waited / max(now - tick, 1e-9))
        self.vote.settle()  # before the evaluation's collectives; a stop then ends the next step
        return True

    def _sync(self, boundary: bool) -> Any:
        """DDP all-reduces gradients only on optimizer steps, not on accumulation steps."""
        if isinstance(self.net, torch.nn.parallel.DistributedDataParallel) and not boundary:
            return self.net.no_sync()
        return nullcontext()

    def _log(self, loss: float, per_s: float, wait_frac: float) -> None:
        log_train(self, loss, per_s, wait_frac, self.opt.param_groups[0]["lr"])

    def _mean_loss(self, loss_sum: torch.Tensor, n: int, seen: int) -> tuple[float, int]:
        """The interval's mean loss and images seen, over every rank."""
        if not self.dist.on:
            return (loss_sum / n).item(), seen
        counts = torch.tensor([n, seen], dtype=torch.float32, device=loss_sum.device)
        total = torch.cat([loss_sum.float().view(1), counts])
        self.dist.all_reduce_sum(total)
        loss, count, images = total.tolist()
        return loss / count, int(images)

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, split: Split, full: bool = False, model: torch.nn.Module | None = None
    ) -> dict[str, Any]:
        net = model if model is not None else self.model
        net.eval()
        self.dist.broadcast_buffers(net)
        k = len(self.data.classes)
        conf = torch.zeros(k, k, dtype=torch.long, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        top5 = torch.zeros((), device=self.device)
        n = 0
        for xb, yb in batches(
            split,
            self.cfg.train.batch_size * 2,
            self.cfg.data.image_size,
            workers=self.workers,
            pin=self.pin,
            shard=self.shard,
            drop_single=False,
        ):
            x, y = self._prep(xb, yb)
            with self._autocast():
                logits = net(x)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            pred = logits.argmax(1)
            conf += torch.bincount(y * k + pred, minlength=k * k).view(k, k)
            top5 += (logits.topk(min(5, k), 1).indices == y[:, None]).any(1).sum()
            n += len(y)
        if self.dist.on:  # each rank saw its share of the split: sum the shares
            counts = torch.stack([loss_sum, top5.float(), loss_sum.new_tensor(float(n))])
            self.dist.all_reduce_sum(conf)
            self.dist.all_reduce_sum(counts)
            loss_sum, top5, n = counts[0], counts[1], int(counts[2].item())
        conf_cpu = conf.cpu()
        correct = conf_cpu.diag().sum().item()
        out: dict[str, Any] = {
            "loss": loss_sum.item() / max(n, 1),
            "acc": correct / max(n, 1),
            "top5": top5.item() / max(n, 1),
            "n": n,
        }
        if full:
            per = conf_cpu.diag().float() / conf_cpu.sum(1).clamp(min=1).float()
            out["per_class"] = dict(
                zip(self.data.classes, [round(v, 4) for v in per.tolist()], strict=True)
            )
            out["confusion"] = conf_cpu.tolist()
        return out

    # -- checkpoints ------------------------------------------------------------------------
    def model_state(self, net: torch.nn.Module | None = None) -> dict[str, Any]:
        net = net if net is not None else self.model
        return {
            "model": self.tech.checkpoint_weights(net.state_dict()),
            **self.tech.checkpoint_extra(),
            "model_name": self.cfg.model.name,
            "num_classes": len(self.data.classes),
            "classes": self.data.classes,
            "dropout": self.cfg.model.dropout,
            "head": self.cfg.head.model_dump(),
            "image_size": self.cfg.data.image_size,
            "mean": (self.mean.flatten() / 255).tolist(),
            "std": (self.std.flatten() / 255).tolist(),
        }

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

    # -- the run (engine/epochs.py) ----------------------------------------------------------
    def validate(self) -> Scored:
        net = self.tech.eval_model(self.model)  # the EMA model when it is kept
        val = self.evaluate(self.data.val, model=net)
        val["extra"] = {}
        stop = self.tech.epoch_end(self, val)  # early stopping; EMA scores the other model
        metric = self.cfg.train.metric
        return Scored(
            event={
                "val_loss": val["loss"],
                "val_acc": val["acc"],
                "val_top5": val["top5"],
                **val["extra"],
            },
            metric=metric,
            value=val["acc"] if metric == "val_acc" else val["loss"],
            best={"val_acc": val["acc"], "val_loss": val["loss"]},
            higher=metric == "val_acc",
            stop=stop,
            net=net,
        )

    def barrier(self) -> None:
        self.dist.barrier()

    def fit(self) -> str:
        """Train to the end or until stopped; returns "completed" or "stopped"."""
        return epochs.fit(self)

    def test(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on the test split (val if there is no test split)."""
        best, split, name = epochs.load_best(self)
        res = self.evaluate(split, full=True)
        return {
            "split": name,
            "loss": res["loss"],
            "acc": res["acc"],
            "top5": res["top5"],
            "n": res["n"],
            "per_class": res["per_class"],
            "confusion": res["confusion"],
            "epoch": best["best"]["epoch"],
        }
