"""The engine context the outcome benches hand a trainer run in-process: a checkpoint folder
and nothing else (no event file, no progress, never asked to stop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class QuietCtx:
    def __init__(self, ckpt_dir: Path) -> None:
        self.ckpt_dir = ckpt_dir
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    def emit(self, kind: str, /, **fields: Any) -> None:
        pass

    def progress(self, force: bool = False, **fields: Any) -> None:
        pass

    def stop_requested(self) -> bool:
        return False
