"""Commands that make and act on runs: init, run, slurm, resume, stop, rm, label."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tuneterm.cli.common import (
    CONFIG_HELP,
    EXIT_ALIVE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_KILLED,
    EXIT_OK,
    RUN_HELP,
    RUNS_HELP,
    SET_HELP,
    STATUS_EXIT,
    AddCommand,
    check_name,
    console,
    out,
    queue_flags,
    status_style,
    store_of,
)
from tuneterm.cli.queue import enqueue_config, requeue_run
from tuneterm.cli.scripts import script_config
from tuneterm.config import ConfigError, ConfigIssue, RunConfig, load, run_config, template
from tuneterm.runs import launcher, lifecycle, report, slurmjobs, torchrun, view
from tuneterm.runs.watch import watch
from tuneterm.store.runs import RunInfo, RunStore
from tuneterm.store.text import printable
from tuneterm.tasks import metric_spec_of_run


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"init: {path} exists; pass --force to overwrite", file=sys.stderr)
        return EXIT_INVALID
    path.write_text(template(), encoding="utf-8")
    print(f"wrote {path}: edit it, then `tuneterm run {path}`")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    store = store_of(args)
    cfg = script_config(args, getattr(args, "script_command", None))
    if cfg is None:  # a run of tuneterm's engine
        if not args.config:
            raise ConfigError(
                [ConfigIssue("config", "", "give a config file, or a command after --")]
            )
        gpus = [f"train.gpus={_gpu_count(args.gpus)}"] if args.gpus is not None else []
        cfg = load(args.config, [*args.set, *gpus])
        if args.tag:
            cfg.run.tags = sorted({*cfg.run.tags, *args.tag})
    check_name(args.name)
    if args.slurm:
        return submit_slurm(args, store, [(cfg, args.name or "")])
    if args.queue:
        return enqueue_config(args, cfg)
    info = launcher.start(store, cfg, name=args.name or "")
    if args.detach:
        if args.json:
            out(report.summary(info))
        else:
            print(info.id)
            print(
                f"follow: tuneterm events {info.id} --follow   stop: tuneterm stop {info.id}",
                file=sys.stderr,
            )
        return EXIT_OK
    return follow(store, info.id, args.json)


def submit_slurm(
    args: argparse.Namespace, store: RunStore, cfgs: list[tuple[RunConfig, str]]
) -> int:
    """Submit the runs as one Slurm job; print their ids (and follow one unless --detach)."""
    infos = launcher.submit_slurm(store, cfgs)
    if len(infos) == 1 and not getattr(args, "detach", True):
        return follow(store, infos[0].id, args.json)
    if args.json:
        out([{**report.summary(i), "job": i.meta.slurm.get("job_id") if i.meta else ""}
             for i in infos] if len(infos) > 1 else
            {**report.summary(infos[0]), "job": slurm_job(infos[0])})  # fmt: skip
    else:
        for info in infos:
            print(info.id)
            print(f"submitted as Slurm job {slurm_job(info)}; follow: tuneterm events {info.id} "
                  f"--follow   stop: tuneterm stop {info.id}", file=sys.stderr)  # fmt: skip
    return EXIT_OK


def slurm_job(info: RunInfo) -> str:
    return str(info.meta.slurm.get("job_id", "")) if info.meta is not None else ""


def _gpu_count(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            [ConfigIssue("--gpus", raw, "a number of GPUs for an engine run (train.gpus)")]
        ) from None


def cmd_slurm(args: argparse.Namespace) -> int:
    """Create the run (status `submitted`) and write an sbatch script that runs its engine on
    N nodes through srun + torchrun; `--submit` also hands it to sbatch."""
    import shutil
    import subprocess

    store = store_of(args)
    sets = list(args.set)
    if args.nodes is not None:
        sets.append(f"dist.nnodes={args.nodes}")
        sets.append(f"slurm.nodes={args.nodes}")
    if args.gpus_per_node is not None:
        sets.append(f"train.gpus={max(1, args.gpus_per_node)}")
        sets.append(f"slurm.gpus_per_node={args.gpus_per_node}")
    for key in ("partition", "time", "account"):
        if getattr(args, key):
            sets.append(f"slurm.{key}={getattr(args, key)}")
    if args.cpus_per_task:
        sets.append(f"slurm.cpus_per_task={args.cpus_per_task}")
    cfg = load(args.config, sets)
    check_name(args.name)
    if args.submit and args.out is None:  # the same as `tuneterm run CONFIG --slurm`
        args.detach = True
        return submit_slurm(args, store, [(cfg, args.name or "")])
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
    where = Path(args.out).resolve() if args.out else None
    info, script = launcher.prepare_slurm(store, cfg, job, args.name or "", where)
    job_id = ""
    if args.submit:
        done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
        if done.returncode != 0:
            # Nothing is left behind: a run that was never submitted would read `submitted`
            # for ever (the script written inside the run folder goes with it).
            store.delete(info.id)
            if where is not None:
                where.unlink(missing_ok=True)
            print(f"tuneterm: sbatch failed: {done.stderr.strip()}", file=sys.stderr)
            return EXIT_FAILED
        job_id = done.stdout.strip()
    if args.json:
        out({"id": info.id, "path": str(info.path), "script": str(script), "job": job_id})
    else:
        print(info.id)
        print(
            f"wrote {script}; "
            + (f"submitted job {job_id}" if job_id else f"submit: sbatch {script}"),
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    store = store_of(args)
    run_id = store.resolve(args.run)
    if args.queue:
        return requeue_run(args, store, run_id)
    if args.slurm:
        info = slurmjobs.resubmit(store, run_id)
        if args.json:
            out({**report.summary(info), "job": slurm_job(info)})
        else:
            print(f"{run_id}: resumes as Slurm job {slurm_job(info)}", file=sys.stderr)
        return EXIT_OK
    info = launcher.resume(store, run_id)
    if args.detach:
        out(report.summary(info)) if args.json else print(run_id)
        return EXIT_OK
    return follow(store, run_id, args.json)


def follow(store: RunStore, run_id: str, as_json: bool) -> int:
    """Show the run's progress until it ends. Ctrl-C stops following, never the run."""
    con = console()
    try:
        watch(store, [run_id], con, quiet=as_json)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; the run goes on. Stop it with: tuneterm stop {run_id}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    info = store.info(run_id)
    if as_json:
        out(report.detail(store, info))
    else:
        _print_outcome(con, info)
    return STATUS_EXIT.get(info.status, EXIT_FAILED)


def _print_outcome(con: Any, info: RunInfo) -> None:
    m = info.meta
    con.print(f"run {info.id}: [{status_style(info.status)}]{info.status}[/]")
    if m is None:
        con.print(printable(info.reason), markup=False)
        return
    best = view.best(info)
    if best is not None:
        step = m.best.get("step")
        where = f"epoch {best.epoch}" if m.epochs else (f"step {step}" if step is not None else "")
        con.print(f"  best {best.metric.name} {best.text}" + (f" at {where}" if where else ""))
    spec = metric_spec_of_run(m)
    for metric in (*spec.test, *spec.val):  # what the final test measured
        if metric.name in m.final:
            con.print(f"  {metric.name} {metric.format(m.final[metric.name])}")
    if m.error or info.reason:
        from rich.text import Text

        con.print(Text("  " + printable(m.error or info.reason), style="red"))
    if info.status in ("stopped", "crashed", "failed"):
        con.print(f"  resume with: tuneterm resume {info.id}")


def cmd_stop(args: argparse.Namespace) -> int:
    """Exit 0: the run ended (or, with --wait 0, was asked to); 5: it outlived its stop grace
    period and was killed; 6: it still runs when the wait ran out."""
    store = store_of(args)
    run_id = store.resolve(args.run)
    grace = _stop_grace(store, run_id)
    wait = args.wait if args.wait is not None else (grace + 10.0 if grace else 30.0)
    before = store.info(run_id)
    outcome = "" if before.alive else lifecycle.end_orphaned(store, before, args.force, wait)
    if outcome:  # the supervisor was gone: its script's processes were ended from here
        info = store.info(run_id)
    else:
        info = launcher.stop(store, run_id, force=args.force, wait=wait)
        outcome = _outcome(info, args.force, wait)
    code = {"killed": EXIT_OK if args.force else EXIT_KILLED, "alive": EXIT_ALIVE}.get(
        outcome, EXIT_OK
    )
    if args.json:
        out({**report.summary(info), "stop": outcome})
    elif outcome == "alive":
        after = f"; it is killed {grace:g} s after the stop signal" if grace else ""
        print(
            f"{run_id}: still {info.status} after {wait:g} s{after}; "
            f"`tuneterm stop --force {run_id}` kills it now",
            file=sys.stderr,
        )
    elif outcome == "killed" and not args.force:
        print(f"{run_id}: did not end within {grace:g} s of the stop signal (script.stop_grace_s);"
              f" killed; status now {info.status}")  # fmt: skip
    else:
        what = "killed" if args.force else ("asked to stop" if wait <= 0 else "stopped")
        print(f"{run_id}: {what}; status now {info.status}")
    return code


def cmd_kill(args: argparse.Namespace) -> int:
    """`stop --force`: SIGKILL now, no checkpoint."""
    args.force = True
    return cmd_stop(args)


def _stop_grace(store: RunStore, run_id: str) -> float:
    """A script run's script.stop_grace_s; 0 for an engine run (or a config that won't read)."""
    try:
        cfg = run_config(store, run_id)
    except (ConfigError, OSError):
        return 0.0
    return cfg.script.stop_grace_s if cfg.run.task == "script" else 0.0


def _outcome(info: RunInfo, force: bool, wait: float) -> str:
    if wait <= 0:
        return ""
    if info.alive or info.status == "orphaned":
        return "alive"
    if force or (info.meta is not None and info.meta.stop_outcome == "killed"):
        return "killed"
    return "clean"


def cmd_rm(args: argparse.Namespace) -> int:
    store = store_of(args)
    ids = [store.resolve(r) for r in args.runs]
    for run_id in ids:
        launcher.delete(store, run_id, force=args.force)
        if not args.json:
            print(f"deleted {run_id}")
    if args.json:
        out({"deleted": ids})
    return EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    store = store_of(args)
    run_id = store.resolve(args.run)
    current = store.info(run_id).label
    tags = None
    if args.tag or args.untag:
        tags = (set(current.tags) | set(args.tag or [])) - set(args.untag or [])
    label = store.set_label(
        run_id, name=args.name, tags=sorted(tags) if tags is not None else None, notes=args.notes
    )
    if args.json:
        out(label.model_dump())
    else:
        print(
            f"{run_id}: name={label.name or '-'} tags={','.join(label.tags) or '-'}"
            f" notes={label.notes!r}"
        )
    return EXIT_OK


def slurm_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slurm", action="store_true",
                   help="submit to Slurm as a batch job (the config's [slurm] table)")  # fmt: skip


def add_commands(add: AddCommand) -> None:
    p = add("init", cmd_init, "write a commented config template", json_flag=False, store=False)
    p.add_argument("path", nargs="?", default="tuneterm.toml",
                   help="the file to write (default tuneterm.toml)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p = add(
        "run",
        cmd_run,
        "launch a run from a TOML config, or your own script: run [CONFIG] -- CMD ARGS...",
    )
    p.add_argument("config", nargs="?", default="", help=CONFIG_HELP + "; none with -- CMD")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=SET_HELP)  # fmt: skip
    p.add_argument("--name", default="", help="display name of the run")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    queue_flags(p)
    p.add_argument("--tag", action="append", default=[], help="add a tag (repeatable)")
    p.add_argument(
        "--gpus",
        metavar="N",
        help="train.gpus: N processes (one per GPU) through torchrun + DDP; for a script run "
        "(-- CMD), the CUDA_VISIBLE_DEVICES it gets, e.g. 0,1",
    )
    slurm_flag(p)
    p = add("slurm", cmd_slurm, "create a run and write an sbatch script for N nodes (torchrun)")
    p.add_argument("config", help=CONFIG_HELP)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=SET_HELP)  # fmt: skip
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
    p = add("stop", cmd_stop, "stop a run gracefully (checkpoint first), or kill it with --force")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument(
        "--force", action="store_true", help="SIGKILL: no checkpoint; the run reads as crashed"
    )
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        help="seconds to wait for it to end (default 30; a script run: script.stop_grace_s "
        "+ 10); exit 5 if it had to be killed, 6 if it still runs",
    )
    p = add("kill", cmd_kill, "kill a run now (SIGKILL, no checkpoint): stop --force")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--wait", type=float, default=None, help="seconds to wait for it to end")
    p = add(
        "resume", cmd_resume, "continue a stopped, crashed or failed run from its last checkpoint"
    )
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--detach", action="store_true", help="return at once instead of following")
    queue_flags(p)
    slurm_flag(p)
    p = add("rm", cmd_rm, "delete runs (their folders)")
    p.add_argument("runs", nargs="+", help=RUNS_HELP)
    p.add_argument("--force", action="store_true", help="kill the run first if it is running")
    p = add("label", cmd_label, "rename, tag or annotate a run")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--name", help="the run's new display name")
    p.add_argument("--tag", action="append", help="add a tag (repeatable)")
    p.add_argument("--untag", action="append", help="remove a tag (repeatable)")
    p.add_argument("--notes", help="free text kept with the run (replaces its notes)")
