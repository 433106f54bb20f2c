"""A soup's process: `python -m tuneterm.engine.kinds.soup.run RUN_DIR`.

The engine's own process (engine/process.py: its pid record, signals, sampler, meta.json and
events), running the soup's recipe (cook.py) in place of training, so a soup is listed,
watched, stopped and read like any run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuneterm.config import run_config
from tuneterm.engine.process import EngineProcess
from tuneterm.store.runs import RunStore


class SoupProcess(EngineProcess):
    def _train(self, resume: bool) -> int:
        cfg = run_config(self.store, self.run_id)
        from tuneterm.engine.kinds.soup import cook  # torch

        self.emit("phase", name="imports", process_start=self.meta.pid_start)
        return cook.run(self, cfg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuneterm.engine.kinds.soup.run")
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")  # a soup starts over: it has no steps
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    return SoupProcess(RunStore(run_dir.parent), run_dir.name).run(resume=False)


if __name__ == "__main__":
    sys.exit(main())
