"""A CUDA smoke run of each task kind, with the TUI's system (NVML) pane read back.

    python bench/gpu_smoke.py --out DIR [--kinds classify,detect,text] [--text-model DIR]

For each kind it launches a real `tuneterm run` on `train.device = "cuda"` (detached engine,
event queue, checkpoints), waits for the end, and prints: the status, the device the engine
recorded, img/s, peak GPU memory, the best metric, and the GPU samples of its `sys` events
(NVML: utilisation, memory). Then it opens the TUI headless (Textual's test driver) over the
runs folder, selects each run, shows the system pane (key 3) and writes the screen as text to
DIR/tui-system-<kind>.txt, so the NVML pane can be read without a terminal. Skips cleanly
without CUDA.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# A script run's own CUDA loop (run.task = "script"): its GPU memory reaches the system pane
# through NVML's per-process figures.
CUDA_SCRIPT = """
import time, torch
dev = torch.device("{device}")
nn = torch.nn
model = nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 10)).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x, y = torch.randn(4096, 1024, device=dev), torch.randint(0, 10, (4096,), device=dev)
for step in range(300 if dev.type == "cuda" else 12):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 10 == 0:
        print(f"step: {{step}} loss: {{loss.item():.4f}}", flush=True)
        time.sleep(0.05)
"""


def digits(model: str) -> dict[str, dict[str, object]]:
    """An image classifier on the embedded digits, 4 epochs."""
    return {
        "model": {"name": model, "weights": "none"},
        "data": {"dataset": "digits", "image_size": 32},
        "train": {"epochs": 4, "batch_size": 64},
    }


# Each kind's smoke run (train.device is added); values "{...}" are filled in per machine.
CONFIGS: dict[str, dict[str, dict[str, object]]] = {
    "classify": digits("resnet18"),
    "detect": {
        "run": {"task": "detect"},
        "model": {"name": "ssdlite320_mobilenet_v3_large", "weights": "none"},
        "data": {"dataset": "shapes-boxes"},
        "detect": {"images": 300},
        "train": {"epochs": 3, "batch_size": 16},
    },
    "timm": digits("timm/resnet10t"),
    "script": {"script": {"command": ["{python}", "{runs}/cuda_loop.py"]}},
    "text": {
        "run": {"task": "text"},
        "model": {"weights": "none"},
        "data": {"dataset": "topics"},
        "text": {"model": "{text_model}", "max_length": 32},
        "train": {"epochs": 6, "batch_size": 32, "lr": 3e-4, "metric": "val_f1"},
    },
}


def config_toml(kind: str, device: str, fill: dict[str, str]) -> str:
    import tomlkit

    sections = {k: dict(v) for k, v in CONFIGS[kind].items()}
    if kind != "script":
        sections.setdefault("train", {})["device"] = device
    text = tomlkit.dumps(sections)
    for key, value in fill.items():
        text = text.replace("{" + key + "}", value)
    return text


def tuneterm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuneterm", *args], capture_output=True, text=True, check=False
    )


async def read_system_panes(runs: Path, ids: dict[str, str], out: Path) -> None:
    from helpers.fake_store import screen_text  # tests/ helper: the screen as plain text

    from tuneterm.store import RunStore
    from tuneterm.tui.app import TuneTermApp
    from tuneterm.tui.widgets.runtable import RunTable

    app = TuneTermApp(RunStore(runs), gpu_interval=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(50):
            await pilot.pause(0.1)
            tables = app.screen.query(RunTable)
            if tables and tables.first().row_count == len(ids):
                break
        table = app.screen.query_one(RunTable)
        for kind, run_id in ids.items():
            row = [table.infos[i].id for i in table.order].index(run_id)
            table.move_cursor(row=row)
            await pilot.press("3")
            await pilot.pause(2.5)  # the NVML sampler runs every second in a worker
            text = screen_text(app)
            (out / f"tui-system-{kind}.txt").write_text(text)
            print(f"--- TUI system pane, {kind} run {run_id} (120x40) ---")
            print("\n".join(line.rstrip() for line in text.splitlines()[:40]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu-smoke-out"))
    ap.add_argument("--kinds", default="classify,detect,text,timm,script")
    ap.add_argument("--text-model", default="minilm")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/tuneterm-gpu-smoke"))
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script's code paths")
    args = ap.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here: skipped")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs.mkdir(parents=True, exist_ok=True)
    os.environ["TUNETERM_RUNS"] = str(args.runs)
    os.environ.setdefault("TUNETERM_OFFLINE", "1")
    ids: dict[str, str] = {}
    for kind in args.kinds.split(","):
        cfg = args.runs / f"{kind}.toml"
        (args.runs / "cuda_loop.py").write_text(CUDA_SCRIPT.format(device=args.device))
        fill = {"text_model": args.text_model, "runs": str(args.runs), "python": sys.executable}
        cfg.write_text(config_toml(kind, args.device, fill))
        t0 = time.time()
        got = tuneterm("run", str(cfg), "--name", f"smoke-{kind}", "--json")
        wall = time.time() - t0
        try:
            res = json.loads(got.stdout[got.stdout.index("{") :])
        except ValueError:
            tail = got.stdout[-2000:] + got.stderr[-2000:]
            print(f"{kind}: no JSON (exit {got.returncode})\n{tail}")
            continue
        if "id" not in res:
            print(f"{kind}: {res}")
            continue
        ids[kind] = res["id"]
        ev = tuneterm("events", res["id"], "--json", "--kind", "sys", "--kind", "train")
        lines = [json.loads(x) for x in ev.stdout.splitlines() if x.strip()]
        gpus = [g for e in lines if e["kind"] == "sys" for g in e.get("gpus", [])]
        trains = [e for e in lines if e["kind"] == "train"]
        util = max((g.get("util") or 0 for g in gpus), default=None)
        final = {
            k: v for k, v in (res.get("final") or {}).items() if not isinstance(v, dict | list)
        }
        peak = max((e.get("gpu_mem_peak") or 0 for e in trains), default=0) / 2**20
        mem = max((g.get("mem_used") or 0 for g in gpus), default=None)
        print(
            f"{kind}: status {res['status']} in {wall:.1f} s; device {res.get('device')}; "
            f"img/s {res.get('throughput')}; best {res.get('best')}; final "
            f"{final}; gpu_mem_peak {peak:.0f} MiB; "
            f"NVML samples {len(gpus)}, max util {util}%, max mem_used "
            f"{(mem or 0) / 2**20:.0f} MiB; {gpus[-1] if gpus else 'no GPU in sys events'}"
        )
        (args.out / f"run-{kind}.json").write_text(got.stdout)
        if res["status"] != "completed":
            log = args.runs / res["id"] / "engine.log"
            print(log.read_text()[-3000:] if log.exists() else "(no engine.log)")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    asyncio.run(read_system_panes(args.runs, ids, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
