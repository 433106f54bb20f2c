"""Recognisers of the lines well-known training scripts print, each from the script's own format
string (the fixtures in tests/data/script_formats/ are their captured output)."""

from __future__ import annotations

import re

from tuneterm.script.formats.base import NUM, Reading, Record, named, number

_N = rf"({NUM})"


def _f(raw: str) -> float:
    value = number(raw)
    return float("nan") if value is None else value


def _train_step(values: dict[str, float], epoch: int, i: int, n: int, source: str) -> Reading:
    """Batch `i` of `n` in `epoch` (counted from 0): the step is the batches before it in all
    epochs, and the epoch is fractional, so that a curve against epochs is not a staircase."""
    step, at = epoch * n + i, epoch + i / max(n, 1)
    return Reading(Record(values, step=step, epoch=at, phase="train", source=source), source)


class NanoGPT:
    """karpathy/nanoGPT train.py: `iter N: loss X, time T ms, mfu M%` every log_interval, and
    `step N: train loss X, val loss Y` at each evaluation (the train split's loss, measured
    there, is `eval_train_loss`: it is not the loss of a training step)."""

    name = "nanogpt"
    project = "karpathy/nanoGPT train.py"
    _ITER = re.compile(rf"^iter (\d+): loss {_N}, time {_N}ms, mfu {_N}%$", re.IGNORECASE)
    _EVAL = re.compile(rf"^step (\d+): train loss {_N}, val loss {_N}$", re.IGNORECASE)

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        if m := self._ITER.match(text):
            rec = Record({"loss": _f(m[2])}, step=int(m[1]), phase="train", source=self.name)
            return Reading(rec, self.name)
        if m := self._EVAL.match(text):
            values = {"val_loss": _f(m[3]), "eval_train_loss": _f(m[2])}
            return Reading(
                Record(values, step=int(m[1]), phase="eval", source=self.name), self.name
            )
        return None


class PytorchExamples:
    """pytorch/examples mnist/main.py (and the examples built on it):
    `Train Epoch: E [i/n (p%)]\\tLoss: X` where i counts samples, and
    `Test set: Average loss: X, Accuracy: a/b (p%)`. The step is the samples seen."""

    name = "pytorch-examples"
    project = "pytorch/examples mnist/main.py"
    _TRAIN = re.compile(rf"^Train Epoch: (\d+) \[(\d+)/(\d+) \(\d+%\)\]\s+Loss: {_N}$")
    _TEST = re.compile(rf"^Test set: Average loss: {_N}, Accuracy: (\d+)/(\d+) \(\d+%\)$")

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        if m := self._TRAIN.match(text):
            # its epochs count from 1 and `seen` counts samples: the step is the samples seen
            return _train_step({"loss": _f(m[4])}, int(m[1]) - 1, int(m[2]), int(m[3]), self.name)
        if m := self._TEST.match(text):
            right, total = int(m[2]), int(m[3])
            values = {"val_loss": _f(m[1]), "val_acc": right / total if total else float("nan")}
            return Reading(Record(values, phase="eval", source=self.name), self.name)
        return None


class Timm:
    """huggingface/pytorch-image-models train.py: `Train: E [i/n (p%)]  Loss: X (avg)  Time: ...
    LR: L  Data: ...` and `Test: [i/last]  Time: ...  Loss: X (avg)  Acc@1: a (avg)  Acc@5: b
    (avg)`. A train line gives the loss of that step (the first number); an evaluation is
    read once, from its last batch's running averages (the numbers in brackets)."""

    name = "timm"
    project = "huggingface/pytorch-image-models train.py"
    _TRAIN = re.compile(
        rf"^Train: (\d+) \[\s*(\d+)/(\d+) \(\s*\d+%\)\]\s+Loss:\s*{_N} \(\s*{_N}\)\s+Time:.*?"
        rf"LR:\s*{_N}"
    )
    _TEST = re.compile(
        rf"^Test( \(EMA\))?: \[\s*(\d+)/(\d+)\]\s+Time:.*?Loss:\s*{_N} \(\s*{_N}\)\s+"
        rf"Acc@1:\s*{_N} \(\s*{_N}\)\s+Acc@5:\s*{_N} \(\s*{_N}\)"
    )
    _BANNER = re.compile(
        r"^(Model \S+ created, param count|\*\*\* Best metric:|Current checkpoints)"
    )

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        if m := self._TRAIN.match(text):
            values = {"loss": _f(m[4]), "lr": _f(m[6])}
            return _train_step(values, int(m[1]), int(m[2]), int(m[3]), self.name)
        if m := self._TEST.match(text):
            if m[2] != m[3]:  # a batch in the middle: its averages are not the result yet
                return Reading(None, self.name)
            pre = "val_ema_" if m[1] else "val_"
            values = {pre + "loss": _f(m[5]), pre + "acc1": _f(m[7]), pre + "acc5": _f(m[9])}
            return Reading(Record(values, phase="eval", source=self.name), self.name)
        if self._BANNER.match(text):
            return Reading(None, self.name)
        return None


class Torchvision:
    """pytorch/vision references (classification, detection, ...): MetricLogger lines
    `Epoch: [E]  [i/n]  eta: ...  lr: L  img/s: ...  loss: X (avg)  acc1: ...  time: ...`,
    where a meter prints its median then its global average, and the evaluation's summary
    `Test:  Acc@1 X Acc@5 Y` (` * Acc@1 X Acc@5 Y` in older releases)."""

    name = "torchvision"
    project = "pytorch/vision references/classification"
    _TRAIN = re.compile(r"^Epoch: \[(\d+)\]\s+\[\s*(\d+)/(\d+)\]\s+eta: \S+\s+(.*)$")
    _METER = re.compile(rf"([A-Za-z_][\w/@]*+): {_N}(?: \(\s*{_N}\))?")
    _SKIP = frozenset({"time", "data", "img/s", "mem", "eta"})
    _SUMMARY = re.compile(rf"^(?:Test:\s*(EMA)?\s*|\* )Acc@1 {_N} Acc@5 {_N}$")
    _OTHER = re.compile(
        r"^(Test:\s*(EMA)?\s*\[\s*\d+/\d+\]|Test:.*Total time|Epoch: \[\d+\] Total)"
    )

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        if m := self._TRAIN.match(text):
            values = {
                named(k, "train"): _f(v)
                for k, v, _ in self._METER.findall(m[4])
                if k not in self._SKIP
            }
            return _train_step(values, int(m[1]), int(m[2]), int(m[3]), self.name)
        if m := self._SUMMARY.match(text):
            pre = "val_ema_" if m[1] else "val_"
            values = {pre + "acc1": _f(m[2]), pre + "acc5": _f(m[3])}
            return Reading(Record(values, phase="eval", source=self.name), self.name)
        if self._OTHER.match(text):
            return Reading(None, self.name)
        return None
