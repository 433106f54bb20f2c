"""What the keys do to runs: new and clone, then stop, kill, resume, delete, rename, tags and
notes of the selected run.

The base of `MainScreen`, which shows the run these keys apply to. Each action asks first
where it cannot be undone, runs in a worker through `tuneterm.runs.launcher` or the store (as
the CLI does), and reports back with an `ActionDone` message.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tuneterm.config import ConfigError, run_config, template, to_toml
from tuneterm.runs import launcher
from tuneterm.store import RunInfo
from tuneterm.tui.messages import ActionDone
from tuneterm.tui.protocols import Hosted


class RunActions(Hosted, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "n",
            "new_run",
            "New",
            id="run.new",
            tooltip="Write a config for a new run, from the template or the last draft",
        ),
        Binding(
            "e",
            "clone_run",
            "Clone",
            id="run.clone",
            tooltip="Open the selected run's config in the editor as a new run",
        ),
        Binding(
            "s",
            "stop",
            "Stop",
            id="run.stop",
            tooltip="Stop the selected run: it finishes its step, saves last.pt and ends",
        ),
        Binding(
            "K",
            "kill",
            "Kill",
            id="run.kill",
            show=False,
            tooltip="Kill the selected run's process now, without a checkpoint",
        ),  # k moves up, as in k9s
        Binding(
            "r",
            "resume",
            "Resume",
            id="run.resume",
            tooltip="Resume the selected run from its last checkpoint",
        ),
        Binding(
            "d,delete",
            "delete",
            "Delete",
            id="run.delete",
            show=False,
            tooltip="Delete the selected run's folder (asks first)",
        ),
        Binding(
            "R",
            "rename",
            "Rename",
            id="run.rename",
            show=False,
            tooltip="Give the selected run a new name",
        ),
        Binding(
            "t",
            "tags",
            "Tags",
            id="run.tags",
            show=False,
            tooltip="Set the selected run's tags (space-separated)",
        ),
        Binding(
            "o",
            "notes",
            "Notes",
            id="run.notes",
            show=False,
            tooltip="Write notes on the selected run",
        ),
    ]

    @property
    def selected_info(self) -> RunInfo | None:
        """The run the actions apply to (the screen that shows the list says which)."""
        return None

    def rescan(self) -> None:
        """Read the run list again after an action (the screen that shows it does)."""

    def _need_run(self) -> RunInfo | None:
        info = self.selected_info
        if info is None:
            self.notify("No run selected.", severity="warning")
        return info

    def action_stop(self) -> None:
        if (info := self._need_run()) is None:
            return
        if info.status == "queued":  # no engine yet: stopping it takes it off the queue
            self._confirm(f"Cancel {info.name}?", "It leaves the queue as cancelled.", "stop",
                          info.id)  # fmt: skip
            return
        self._confirm_signal(
            info,
            "stop",
            "The run finishes its step, saves last.pt and ends as stopped (resume with r).",
        )

    def action_kill(self) -> None:
        if (info := self._need_run()) is None:
            return
        self._confirm_signal(
            info,
            "kill",
            "SIGKILL: the engine ends at once without saving; "
            "work since the last checkpoint is lost.",
        )

    def _confirm_signal(self, info: RunInfo, action: str, detail: str) -> None:
        """Stop or kill, once confirmed: only a run with a process has one to signal (an
        orphaned one: its script's leftovers)."""
        if not info.alive and info.status != "orphaned":
            self.notify(f"{info.name} is {info.status}: nothing to {action}.", severity="warning")
            return
        self._confirm(f"{action.capitalize()} {info.name}?", detail, action, info.id)

    def action_delete(self) -> None:
        if (info := self._need_run()) is None:
            return
        if info.alive:
            self.notify(
                f"{info.name} is {info.status}: stop it before deleting.", severity="warning"
            )
            return
        self._confirm(
            f"Delete {info.name}?",
            f"Removes {info.path} with its checkpoints and events. This cannot be undone.",
            "delete",
            info.id,
        )

    def action_resume(self) -> None:
        if (info := self._need_run()) is None:
            return
        if info.status not in launcher.RESUMABLE:
            self.notify(
                f"{info.name} is {info.status}; only {', '.join(launcher.RESUMABLE)} runs resume.",
                severity="warning",
            )
            return
        self.notify(f"resuming {info.name}…", timeout=2)
        self.run_action_worker("resume", info.id)

    def _confirm(self, question: str, detail: str, action: str, run_id: str) -> None:
        from tuneterm.tui.screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_action_worker(action, run_id)

        self.app.push_screen(ConfirmScreen(question, detail), answered)

    def action_rename(self) -> None:
        if (info := self._need_run()) is None:
            return
        self._prompt(f"Rename {info.id}", info.name, "name", info.id)

    def action_tags(self) -> None:
        if (info := self._need_run()) is None:
            return
        hint = "tags separated by commas or spaces · enter: save · esc: cancel"
        self._prompt(f"Tags of {info.name}", ", ".join(info.label.tags), "tags", info.id, hint)

    def action_notes(self) -> None:
        if (info := self._need_run()) is None:
            return
        self._prompt(f"Notes on {info.name}", info.label.notes, "notes", info.id)

    def _prompt(self, title: str, value: str, what: str, run_id: str, hint: str = "") -> None:
        from tuneterm.tui.screens.dialogs import PromptScreen

        def answered(text: str | None) -> None:
            if text is not None:
                self.run_action_worker(what, run_id, text)

        self.app.push_screen(PromptScreen(title, value, hint), answered)

    @work(thread=True, group="actions", exit_on_error=False)
    def run_action_worker(self, action: str, run_id: str, text: str = "") -> None:
        store = self.host.store
        error = ""
        try:
            if action == "stop":
                launcher.stop(store, run_id)
            elif action == "kill":
                launcher.kill(store, run_id)
            elif action == "resume":
                launcher.resume(store, run_id)
            elif action == "delete":
                launcher.delete(store, run_id)
            elif action == "name":
                store.set_label(run_id, name=text.strip())
            elif action == "tags":
                store.set_label(run_id, tags=text.replace(",", " ").split())
            elif action == "notes":
                store.set_label(run_id, notes=text)
        except Exception as exc:  # every failure is shown; none may end the app
            error = str(exc) or type(exc).__name__
        self.post_message(ActionDone(action, run_id, error))

    @on(ActionDone)
    def action_done(self, message: ActionDone) -> None:
        if message.error:
            self.notify(message.error, title=f"{message.action} failed", severity="error")
        else:
            done = {"stop": "stop requested", "kill": "killed", "resume": "resumed",
                    "delete": "deleted", "name": "renamed", "tags": "tags saved",
                    "notes": "notes saved"}  # fmt: skip
            self.notify(f"{message.run_id}: {done.get(message.action, message.action)}", timeout=3)
        if message.action == "delete" and not message.error:
            self.host.forget_run(message.run_id)
        self.rescan()

    # -- new runs -------------------------------------------------------------------------------
    def action_new_run(self) -> None:
        from tuneterm.tui.screens.editor import EditorScreen

        if self.host.draft:
            text, title = self.host.draft
            self.app.push_screen(EditorScreen(text, title + " (draft)"))
        else:
            self.app.push_screen(EditorScreen(template(), "New run from the template"))

    def action_clone_run(self) -> None:
        info = self.selected_info
        if info is None:
            self.action_new_run()
            return
        self.clone(info.id)

    @work(thread=True, exclusive=True, group="clone", exit_on_error=False)
    def clone(self, run_id: str) -> None:
        try:
            cfg = run_config(self.host.store, run_id)
            cfg.run.name = ""
            text = to_toml(cfg)
        except (ConfigError, OSError) as exc:
            self.app.call_from_thread(
                self.notify, f"cannot clone {run_id}: {exc}", severity="error"
            )
            return
        self.app.call_from_thread(self._open_clone, text, run_id)

    def _open_clone(self, text: str, run_id: str) -> None:
        from tuneterm.tui.screens.editor import EditorScreen

        self.app.push_screen(EditorScreen(text, f"Clone of {run_id}"))
