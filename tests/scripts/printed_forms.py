"""Prints metrics in every form tuneterm reads without help: key: value, key=value, the dicts
HF Trainer prints, a tqdm bar redrawn with \r and its postfix, then junk and a very long line."""

import sys

print("epoch: 1 acc: 0.5")
print("step=2 val_f1=0.25")
print("{'loss': 0.41, 'learning_rate': 5e-05, 'epoch': 1.0}")
for i in range(1, 4):
    sys.stdout.write(f"\rtrain: {i * 33}%|###| {i}/3 [00:01<00:02, 5.00it/s, bar_metric={i / 10}]")
sys.stdout.write("\n")
sys.stdout.buffer.write(b"\xff\xfe\x00 binary junk \x1b[31m\n")
print("x" * 100_000)
print("mine 7 of 9")
