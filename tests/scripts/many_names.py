"""Prints N lines, each with a metric name never seen before: `step: i m<i>_loss: 0.5` (a
plain pair is read only where its name has a metric word)."""

import sys

for i in range(int(sys.argv[1])):
    print(f"step: {i} m{i}_loss: 0.5")
