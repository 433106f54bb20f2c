"""Your own training script as a tuneterm run.

`python -m tuneterm.script RUN_DIR [--resume]` is the run's process (the supervisor): detached
in its own session like an engine, recorded in meta.json by pid and start time, it starts the
script's command (argv, never a shell) in a process group of its own and owns the run's files:

- `output.log`: the script's whole stdout and stderr, byte for byte;
- `events/`: `log` events for output lines (a `\\r` redraw keeps its last state, long lines are
  cut, bytes that are not UTF-8 are replaced), `train` and `val` events for the metrics it finds
  (`metrics.py`), `sys` samples of the script's process tree;
- `meta.json`: status, progress, and a metric spec that grows as new metric names appear.

The script writes one file, `script/metrics.jsonl`, through the API (tuneterm/api.py); the
supervisor tails it with a byte cursor. No torch here: the supervisor stays small.
"""
