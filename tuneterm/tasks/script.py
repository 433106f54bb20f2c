"""Your own training script (tuneterm/script/): any command, run and watched by a supervisor.

It declares no metrics: they are the ones the script reports (printed lines, `tuneterm.log`,
the Hugging Face and Lightning integrations), written into the run's meta.json as they appear.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING

from tuneterm.tasks.spec import RunView, TaskSpec

if TYPE_CHECKING:
    from tuneterm.config import RunConfig
    from tuneterm.errors import ConfigIssue

NAME = "script"


def check(cfg: RunConfig) -> list[ConfigIssue]:
    """[script] in a script run: a command, patterns that compile, known resume placeholders;
    in a run of another kind: left at its defaults."""
    from tuneterm.config.scriptargs import RESUME_PLACEHOLDERS
    from tuneterm.errors import ConfigIssue

    sc = cfg.script
    if cfg.run.task != NAME:
        if sc.command:
            return [ConfigIssue("script.command", sc.command, f'needs run.task = "{NAME}"')]
        return []
    issues = []
    if not sc.command or not sc.command[0].strip():
        issues.append(
            ConfigIssue(
                "script.command",
                sc.command,
                "empty; give the command after --, e.g. tuneterm run -- python train.py",
            )
        )
    for pattern in sc.patterns:
        try:
            groups = re.compile(pattern).groupindex
        except re.error as exc:
            issues.append(ConfigIssue("script.patterns", pattern, f"not a regex: {exc}"))
            continue
        if not groups:
            issues.append(
                ConfigIssue(
                    "script.patterns", pattern, "needs a named group per metric: (?P<loss>...)"
                )
            )
    allowed = ", ".join("{" + p + "}" for p in RESUME_PLACEHOLDERS)
    for arg in sc.resume_args:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
        except ValueError as exc:
            issues.append(ConfigIssue("script.resume_args", arg, f"bad template: {exc}"))
            continue
        unknown = [n for n in names if n not in RESUME_PLACEHOLDERS]
        if unknown:
            issues.append(
                ConfigIssue(
                    "script.resume_args",
                    arg,
                    f"unknown placeholder {{{unknown[0]}}}; allowed: {allowed}",
                )
            )
    return issues


SPEC = TaskSpec(
    name=NAME,
    noun="script",
    summary="your own training script: any command, its metrics read from what it reports",
    engine="tuneterm.script.kind",
    runner="tuneterm.script",
    datasets=("script",),
    val_metrics=(),
    test_metrics=(),
    select=("val_acc",),
    loss=None,
    model_field="script.label",
    inputs="",
    checks=(check,),
    view=RunView(
        throughput="steps",
        setup="command",
        final="last",
        process="the script, its children and its supervisor",
    ),
)
