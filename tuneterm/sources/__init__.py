"""Runs written by other tools, read where they lie: TensorBoard event files, Hugging Face
Trainer folders, Lightning CSV logs, MLflow file stores and LLaMA-Factory's trainer_log.jsonl.

- `readers`: one small `Reader` protocol and a registry of readers by source name; each keeps
  a byte offset per file, so a poll reads only what was appended;
- `scan`: the runs found under the watched folders, each with an id derived from its path;
- `run`: a reader's points turned into tuneterm events and a `RunMeta`, the metric spec built
  from the names exactly as for script runs;
- `store`: `SourcedStore`, a `RunStore` that lists them beside tuneterm's own runs;
- `cache`: what a listing needs, kept under tuneterm's cache keyed by path, size and mtime.

Read-only: nothing is written into the user's folders. No torch.
"""

from tuneterm.sources.scan import SOURCE_PREFIXES, Found, is_source_id, scan
from tuneterm.sources.settings import load_paths, watch_paths
from tuneterm.sources.store import SourcedStore, sourced_store

__all__ = [
    "SOURCE_PREFIXES",
    "Found",
    "SourcedStore",
    "is_source_id",
    "load_paths",
    "scan",
    "sourced_store",
    "watch_paths",
]
