"""Fails (exit 1) the first time, succeeds on a resume: its marker file is in its working
folder, so a resume started in another folder would fail again."""

import pathlib
import sys

marker = pathlib.Path("ran-once")
if not marker.exists():
    marker.write_text("1")
    print("first run: failing on purpose", flush=True)
    sys.exit(1)
print("loss: 0.25", flush=True)
