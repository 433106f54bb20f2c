"""Metrics named like the store's own event fields (store/eventtypes.py RESERVED), reported by
print (`print` mode) or through `tuneterm.log` (`log` mode). Step N reports value N + k/10 for
the k-th name, so a test can tell each name's value from the field it might have overwritten."""

import sys

import tuneterm

# What a print can hold: `step` and `epoch` printed are read as where the line sits, so they
# are reserved names only through log(), where the step and epoch are arguments.
PRINTED = ("seq", "t", "kind", "off", "user_seq")
LOGGED = ("seq", "t", "kind", "off", "step", "epoch", "user_seq")

mode = sys.argv[1]
if mode == "log":
    tuneterm.define_metric("seq", higher=False, best=True)
for step in range(1, 4):
    if mode == "print":
        # An HF Trainer log dict: the one printed format that reads every name it holds (a
        # plain `seq: 3` is no metric word, so the reader would not take it at all).
        pairs = ", ".join(f"'{name}': {step + k / 10}" for k, name in enumerate(PRINTED))
        print(f"{{'loss': 0.45, {pairs}, 'epoch': 1.0}}", flush=True)
    else:
        values = {name: step + k / 10 for k, name in enumerate(LOGGED)}
        tuneterm.log({**values, "loss": 0.45}, step=step, epoch=1)
