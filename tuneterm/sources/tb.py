"""TensorBoard event files (`events.out.tfevents.*`), read with TensorBoard's own pieces: its
Event protos and its masked CRC-32C of the TFRecord framing (a C implementation where the
`crc32c` package is installed, TensorBoard's pure-Python one otherwise). Unlike TensorBoard's
own loader, the byte offset of each file is kept here, so a poll reads only what was appended
and a record cut short by the writer waits for the next poll."""

from __future__ import annotations

import contextlib
import functools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneterm.sources.points import SKIP, Batch, Point, metric_name
from tuneterm.sources.readers import register, stale

EVENT_FILE = "events.out.tfevents."
_MASK_DELTA = 0xA282EAD8
CHUNK = 8 << 20  # bytes read from a file at a time
HEAD = 1024  # bytes read of a file's start for when the run started


def _load_crc() -> Callable[[bytes], int]:
    try:
        from crc32c import crc32c as fast

        return fast
    except ImportError:
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as slow

        return slow


_crc: Callable[[bytes], int] | None = None


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C (TensorBoard's `masked_crc32c`)."""
    global _crc
    if _crc is None:
        _crc = _load_crc()
    x = _crc(data) & 0xFFFFFFFF
    return (((x >> 15) | (x << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def event_files(folder: Path) -> list[Path]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if n.startswith(EVENT_FILE))


@functools.cache
def _event_proto() -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event


_HEADER = struct.Struct("<QI")  # a record's length and its masked CRC
_CRC = struct.Struct("<I")

NO_TENSORBOARD = (
    "TensorBoard event files need the `tensorboard` package: pip install 'tuneterm[tensorboard]'"
)


def _hparams(content: bytes, facts: dict[str, Any]) -> None:
    """TensorBoard's hparams plugin: the values a session started with."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if not data.HasField("session_start_info"):
        return
    found = facts.setdefault("hparams", {})
    for key, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind in ("number_value", "string_value", "bool_value"):
            found[key] = getattr(value, kind)


def _scalars(record: bytes, out: list[Point], facts: dict[str, Any]) -> None:
    event = _event_proto().FromString(record)
    values = event.summary.value
    if not values:
        return
    step, t = event.step, event.wall_time
    for v in values:
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            value = float(v.simple_value)
        elif v.metadata.plugin_data.plugin_name == "hparams":
            _hparams(v.metadata.plugin_data.content, facts)
            continue
        elif kind == "tensor" and v.metadata.plugin_data.plugin_name == "scalars":
            from tensorboard.util import tensor_util

            value = float(tensor_util.make_ndarray(v.tensor).item())
        else:
            continue  # images, histograms, text, hparams: not curves
        if v.tag in SKIP:
            continue
        out.append(Point(step, t, metric_name(v.tag), value))


@dataclass
class RecordFile:
    """One event file and how far it has been read. `damaged`: a framing error no later byte
    can be trusted after (a bad length CRC); the records before it stay read."""

    path: Path
    offset: int = 0
    damaged: str = ""
    torn_told: bool = False

    def read(self, batch: Batch) -> None:
        if self.damaged:
            return
        try:
            _event_proto()
        except ImportError:
            self.damaged = f"{self.path}: {NO_TENSORBOARD}"
            batch.problems.append(self.damaged)
            return
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return
        while self.offset < size:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(min(CHUNK, size - self.offset))
            used = self._records(data, batch)
            if self.damaged:
                return
            if used == 0:  # a record longer than what is left, or cut short: wait
                self._torn(size, batch)
                return
            self.offset += used

    def _records(self, data: bytes, batch: Batch) -> int:
        pos, end = 0, len(data)
        points, parse, facts = batch.points, _scalars, batch.facts
        while pos + 12 <= end:
            header = data[pos : pos + 8]
            length, crc = _HEADER.unpack_from(data, pos)
            if crc != masked_crc(header):
                self.damaged = f"{self.path}: bad length CRC at byte {self.offset + pos}"
                batch.problems.append(f"{self.damaged}; read up to there, the rest skipped")
                return pos
            stop = pos + 12 + length + 4
            if stop > end:
                if length + 16 > CHUNK and pos == 0:  # one huge record (an image): skip it
                    return self._skip_huge(length)
                break
            body = data[pos + 12 : pos + 12 + length]
            if _CRC.unpack_from(data, stop - 4)[0] != masked_crc(body):
                batch.problems.append(
                    f"{self.path}: bad data CRC in the record at byte {self.offset + pos}; "
                    "that record skipped"
                )
            else:
                try:
                    parse(body, points, facts)
                except Exception as exc:  # a CRC-valid record that is not an Event
                    batch.problems.append(f"{self.path}: record at byte {self.offset + pos}: {exc}")
            pos = stop
        return pos

    def _skip_huge(self, length: int) -> int:
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return 0
        return 12 + length + 4 if self.offset + 12 + length + 4 <= size else 0

    def _torn(self, size: int, batch: Batch) -> None:
        if not self.torn_told and stale(self.path):
            self.torn_told = True
            batch.problems.append(
                f"{self.path}: the last record is incomplete ({size - self.offset} bytes from "
                f"byte {self.offset}); read up to there"
            )


def _resync(data: bytes) -> int:
    """The first offset in `data` where a whole record starts, both its CRCs checked (a
    chance match of both is about one in 2**64); -1 if none."""
    for pos in range(0, max(0, len(data) - 16)):
        header = data[pos : pos + 8]
        if struct.unpack("<I", data[pos + 8 : pos + 12])[0] != masked_crc(header):
            continue
        (length,) = struct.unpack("<Q", header)
        stop = pos + 12 + length + 4
        if stop <= len(data) and struct.unpack("<I", data[stop - 4 : stop])[0] == masked_crc(
            data[pos + 12 : pos + 12 + length]
        ):
            return pos
    return -1


def peek(path: Path, tail: int) -> Batch:
    """The scalars in the last `tail` bytes of an event file, for a listing: the last values
    and the tags, without reading the whole file."""
    batch = Batch()
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - tail))
            data = f.read()
    except OSError:
        return batch
    start = 0 if size <= tail else _resync(data)
    if start >= 0:
        RecordFile(path, max(0, size - tail) + start)._records(data[start:], batch)
    return batch


@dataclass
class TensorBoardReader:
    """A folder's event files, in name order (a restarted writer starts a new file)."""

    folder: Path
    recursive: bool = False  # HF Trainer folders: the files under runs/*/
    known: dict[str, RecordFile] = field(default_factory=dict)

    def files(self) -> list[Path]:
        if not self.recursive:
            return event_files(self.folder)
        out: list[Path] = []
        for root, dirs, names in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(("checkpoint-", ".")))
            out += sorted(Path(root) / n for n in names if n.startswith(EVENT_FILE))
        return out

    def poll(self) -> Batch:
        batch = Batch()
        for path in self.files():
            rf = self.known.setdefault(str(path), RecordFile(path))
            rf.read(batch)
        return batch

    def peek(self, tail: int) -> Batch:
        """The last values of the newest file that has any (see `peek`), and when the run
        started (its first file's first scalar)."""
        files = self.files()
        for path in reversed(files):
            batch = peek(path, tail)
            if batch.points:
                break
        else:
            return Batch()
        head = Batch()
        with contextlib.suppress(OSError), open(files[0], "rb") as f:
            RecordFile(files[0])._records(f.read(HEAD), head)
        if head.points:
            batch.facts["started"] = head.points[0].t
        return batch

    def state(self) -> dict[str, Any]:
        return {p: [rf.offset, rf.damaged] for p, rf in self.known.items()}

    def restore(self, state: dict[str, Any]) -> None:
        for p, (offset, damaged) in state.items():
            self.known[p] = RecordFile(Path(p), int(offset), str(damaged), bool(damaged))


@register("tb")
def _tb(path: Path) -> TensorBoardReader:
    return TensorBoardReader(path)
