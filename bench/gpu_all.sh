#!/usr/bin/env bash
# The GPU figures in one call of the lent device machine (see bench/RESULTS.md):
# gpu_throughput.py, engine_overhead.py --device cuda, then gpu_smoke.py (a CUDA run of each
# task kind, with the TUI's NVML pane read back). Logs go to $OUT (or ./gpu-out).
# Missing Python packages travel as wheels in .whl/ (and a config-only MiniLM folder in
# .whl/minilm-cfg, for a random-init text run without the 90 MB weights file).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TUNETERM_OFFLINE=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
python3 -c "import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
date -u
timeout "${T1:-170}" python3 bench/gpu_throughput.py 2>&1 | tee "$OUT/gpu_throughput.txt"
date -u
timeout "${T2:-150}" python3 bench/engine_overhead.py --device cuda --rounds 2 --epochs 6 2>&1 | tee "$OUT/engine_overhead.txt"
# Issue 25's GPU check: CUDA's warm-up (engine/warmup.py) overlaps the imports and the data, so
# running -> the first optimizer step should take at most 1 s; one figure per round above.
echo "issue 25, running->first step (goal <= 1 s):"
grep -o "running->first step [0-9.]* s" "$OUT/engine_overhead.txt" || echo "  not printed: see above"
date -u
timeout "${T3:-180}" python3 bench/gpu_smoke.py --out "$OUT" --text-model "$PWD/.whl/minilm-cfg" 2>&1 | tee "$OUT/gpu_smoke.txt"
date -u
