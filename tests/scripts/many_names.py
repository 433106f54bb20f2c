"""Prints N lines, each with a metric name never seen before: `step: i m<i>: 0.5`."""

import sys

for i in range(int(sys.argv[1])):
    print(f"step: {i} m{i}: 0.5")
