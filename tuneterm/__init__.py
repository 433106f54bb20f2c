"""tuneterm: manage PyTorch fine-tuning runs from the terminal.

A training script reports to its run through `tuneterm.log(...)`, `tuneterm.should_stop()`,
`tuneterm.run_dir()` and `tuneterm.define_metric(...)` (tuneterm/api.py, imported on first use
so `import tuneterm` stays cheap).
"""

from typing import Any

__version__ = "0.1.0"

_API = frozenset({"log", "should_stop", "run_dir", "define_metric", "checkpoint_dir", "resuming"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from tuneterm import api

        return getattr(api, name)
    raise AttributeError(f"module 'tuneterm' has no attribute {name!r}")
