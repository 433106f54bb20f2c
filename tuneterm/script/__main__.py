"""`python -m tuneterm.script RUN_DIR [--resume]`: a script run's supervisor."""

import argparse
import sys
from pathlib import Path

from tuneterm.script.supervisor import Supervisor
from tuneterm.slurm.commands import requeue_own_job
from tuneterm.store.runs import RunStore


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuneterm.script")
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    sup = Supervisor(RunStore(run_dir.parent), run_dir.name)
    try:
        code = sup.run(args.resume)
    except BaseException as exc:  # the run must end with a status, whatever happened
        sup.set_status("failed", error=f"supervisor error: {exc!r}")
        sup.writer.close()
        print(repr(exc), file=sys.stderr)
        return 1
    if sup.warned and sup.meta.status == "stopped":
        requeue_own_job()  # with slurm.requeue: the job runs again, and the script resumes
    return code


sys.exit(main())
