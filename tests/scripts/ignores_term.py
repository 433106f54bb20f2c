"""Ignores SIGTERM, or with --polite ends on it (exit 0); prints `ready` once it is set."""

import signal
import sys
import time

if "--polite" in sys.argv:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
