"""Kinds renamed since runs were first stored: configs, stored runs and checkpoints written
under an old name read through this one table (`RunSection.task`, `tuneterm.tasks.get`)."""

from __future__ import annotations

RENAMED_KINDS: dict[str, str] = {"text-classify": "text"}  # old run.task -> the kind's name now


def kind_name(task: str) -> str:
    """The kind's name now, for a run.task written by any version."""
    return RENAMED_KINDS.get(task, task)
