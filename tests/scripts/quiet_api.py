"""A quiet script: it reports only through tuneterm.log(), never prints. With --child it first
starts `sleep 1000` in a session of its own (a process that outlives it)."""

import subprocess
import sys
import time

import tuneterm

if "--child" in sys.argv:
    subprocess.Popen(["sleep", "1000"], start_new_session=True)
for step in range(1_000_000):
    tuneterm.log({"loss": 1.0 / (step + 1)}, step=step)
    time.sleep(0.05)
