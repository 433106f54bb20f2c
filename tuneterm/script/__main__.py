"""`python -m tuneterm.script RUN_DIR [--resume]`: a script run's supervisor."""

import sys

from tuneterm.script.supervisor import Supervisor
from tuneterm.slurm.commands import requeue_own_job
from tuneterm.store.runs import runner_args


def main(argv: list[str] | None = None) -> int:
    store, run_id, resume = runner_args("python -m tuneterm.script", argv)
    sup = Supervisor(store, run_id)
    try:
        code = sup.run(resume)
    except BaseException as exc:  # the run must end with a status, whatever happened
        sup.set_status("failed", error=f"supervisor error: {exc!r}")
        sup.writer.close()
        print(repr(exc), file=sys.stderr)
        return 1
    if sup.warned and sup.meta.status == "stopped":
        requeue_own_job()  # with slurm.requeue: the job runs again, and the script resumes
    return code


sys.exit(main())
