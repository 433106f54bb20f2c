"""Recognisers of what training frameworks print: the Hugging Face Trainer's dicts, Lightning's
progress bar, tqdm's postfix and Keras' progress lines."""

from __future__ import annotations

import re

from tuneterm.script.formats.base import NUM, Reading, Record, named, number

_N = rf"({NUM})"
# Figures about the run, not of the model: never curves.
NOT_CURVES = re.compile(r"(_runtime|_per_second|total_flos|^v_num|_samples|_steps)$")
EPOCH_KEYS = ("epoch", "ep")
STEP_KEYS = ("step", "global_step", "iter", "iteration", "it")


class HfTrainerDict:
    """transformers' Trainer prints `{'loss': 0.69, 'grad_norm': ..., 'learning_rate': ...,
    'epoch': 0.5}` while it trains (values quoted since transformers 5), `{'eval_loss': ...,
    'eval_accuracy': ..., 'eval_runtime': ...}` after an evaluation and `{'train_runtime': ...,
    'train_loss': ...}` once at the end: a summary, not a step."""

    name = "hf-trainer"
    project = "huggingface/transformers Trainer"
    _PAIR = re.compile(rf"['\"]([\w./\-]+)['\"]\s*:\s*['\"]?{_N}['\"]?(?=\s*[,}}])", re.IGNORECASE)

    def read(self, line: str) -> Reading | None:
        body = line.strip()
        if not (body.startswith("{") and body.endswith("}")):
            return None
        pairs = self._PAIR.findall(body)
        if not pairs:
            return None
        names = [k for k, _ in pairs]
        if "train_runtime" in names:
            return Reading(None, self.name)
        evaluating = any(k.startswith(("eval_", "test_")) for k in names)
        epoch = None
        values: dict[str, float] = {}
        for k, raw in pairs:
            value = number(raw)
            if value is None or NOT_CURVES.search(k.lower()):
                continue
            if k.lower() in EPOCH_KEYS:
                epoch = value
                continue
            values[named(k, "")] = value
        if not values:
            return Reading(None, self.name)
        rec = Record(values, epoch=epoch, phase="eval" if evaluating else "train", source=self.name)
        return Reading(rec, self.name)


# The bar's count and its bracket; text may follow the bracket when a message was printed
# onto the bar's line (Lightning's "`Trainer.fit` stopped").
_BAR = re.compile(r"\|\s*(\d+)/(\d+|\?)\s*\[[^\],]*(?:, [^\],]*?(?:it/s|s/it))?(?:, ([^\]]*))?\]")
_POSTFIX = re.compile(rf"([A-Za-z_][\w./\-]*+)=\s*{_N}(?=,|$)", re.IGNORECASE)


def _postfix(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, raw in _POSTFIX.findall(text.strip()):
        value = number(raw)
        if value is not None and not NOT_CURVES.search(k.lower()):
            out[named(k, "")] = value
    return out


class LightningBar:
    """Lightning's TQDM progress bar: `Epoch 0:  50%|#####     | 10/20 [00:01<00:01,
    9.5it/s, v_num=0, train_loss=0.5, val_acc=0.8]`: the metrics logged with `prog_bar=True`
    (`v_num` is the logger's version, not a metric). The step is the batch in the epoch."""

    name = "lightning-bar"
    project = "Lightning TQDMProgressBar"
    _LINE = re.compile(r"^Epoch (\d+):")

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        head = self._LINE.match(text)
        if head is None:
            return None
        bar = _BAR.search(text)
        if bar is None:
            return None
        values = _postfix(bar[3] or "")
        if not values:
            return Reading(None, self.name)
        epoch = int(head[1])
        step = None
        if bar[2] != "?":
            step = epoch * int(bar[2]) + int(bar[1])
        return Reading(Record(values, step=step, epoch=float(epoch), source=self.name), self.name)


class LightningRich:
    """Lightning's RichProgressBar (used when `rich` is installed): `Epoch 2/2  ━━━━ 10/10
    0:00:00 • 0:00:00 140.97it/s v_num: 0.000 train_loss: 0.342 val_acc: 0.941`; on a narrow
    or piped output the metrics follow on lines of their own, indented under the bar."""

    name = "lightning-rich"
    project = "Lightning RichProgressBar"
    _HEAD = re.compile(r"^Epoch (\d+)/\d+\s+\S*\s+(\d+)/(\d+)\s.*?(?:it/s|s/it)(.*)$")
    _MORE = re.compile(rf"^\s{{20,}}([A-Za-z_][\w./\-]*+): {_N}\s*$")
    _PAIR = re.compile(rf"([A-Za-z_][\w./\-]*+): {_N}")

    def read(self, line: str) -> Reading | None:
        if m := self._MORE.match(line):
            value = number(m[2])
            if value is None or NOT_CURVES.search(m[1].lower()):
                return Reading(None, self.name)
            rec = Record({named(m[1], ""): value}, source=self.name, same_step=True)
            return Reading(rec, self.name)
        if m := self._HEAD.match(line.strip()):
            values = {
                named(k, ""): v
                for k, raw in self._PAIR.findall(m[4])
                if (v := number(raw)) is not None and not NOT_CURVES.search(k.lower())
            }
            epoch, i, n = int(m[1]), int(m[2]), int(m[3])
            rec = Record(values, step=epoch * n + i, epoch=float(epoch), source=self.name)
            return Reading(rec if values else None, self.name)
        return None


class TqdmPostfix:
    """Any tqdm bar with a postfix: `desc: 45%|####| 9/20 [00:01<00:02, 5.00it/s, loss=0.41]`.
    The bar's count is the position in that bar, not the run's step."""

    name = "tqdm"
    project = "tqdm set_postfix"

    def read(self, line: str) -> Reading | None:
        bar = _BAR.search(line.strip())
        if bar is None or "|" not in line:
            return None
        values = _postfix(bar[3] or "")
        if not values:
            return Reading(None, self.name)
        return Reading(Record(values, source=self.name), self.name)


class KerasProgress:
    """Keras' `fit` lines: `32/32 [====] - 1s 3ms/step - loss: 0.69 - accuracy: 0.50 -
    val_loss: 0.70 - val_accuracy: 0.48` (Keras 3 draws the bar with `━`). A metric without a
    `val_` prefix is the training one."""

    name = "keras"
    project = "keras Model.fit progress bar"
    _LINE = re.compile(r"^(\d+/\d+ \S.*? - |)\w+: ")
    _PAIR = re.compile(rf"(?:^|\s-\s)([A-Za-z_]\w*+): {_N}(?=\s-\s|\s*$)")

    def read(self, line: str) -> Reading | None:
        text = line.strip()
        m = self._LINE.match(text)
        if m is None or (not m[1] and not text.startswith("loss: ")):
            return None
        values: dict[str, float] = {}
        for k, raw in self._PAIR.findall(text):
            value = number(raw)
            if value is not None:
                values[named(k, "eval" if k.startswith("val_") else "train")] = value
        if not values:
            return None
        rec = Record(values, phase="train" if "loss" in values else "eval", source=self.name)
        return Reading(rec, self.name)
