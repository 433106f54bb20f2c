"""Output that looks like markup or carries escape sequences, and names that do too; values
that are not finite. With --fail it exits 1 (so the run's health alerts stay open)."""

import sys

import tuneterm

print("saved to [/data/ckpt] ok", flush=True)
print("[rank: 0] hello [bold]x[/bold] [/]", flush=True)
print("red \x1b[31mRED\x1b[0m c1 \x9b31mX \x85nel \x1b]0;title\x07end", flush=True)
tuneterm.log({"loss": float("inf"), "val_x\x1b[31m": 1.0, "a\nb": 2.0}, step=1)
tuneterm.log({"loss": float("-inf"), "val_y": float("-inf")}, step=2)
tuneterm.log({"loss": float("nan")}, step=3)
sys.exit(1 if "--fail" in sys.argv else 0)
