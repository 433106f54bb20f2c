"""The config editor: TOML with highlighting and live validation, a form for common fields,
and one key to launch. An invalid config cannot launch, and nothing typed is ever lost."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args, get_origin

import tomlkit
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Select, Static, TextArea

from tuneterm.config import (
    CHOICES,
    ConfigError,
    ConfigIssue,
    RunConfig,
    loads,
    modelnames,
    template,
)
from tuneterm.runs import launcher
from tuneterm.tui.messages import LaunchDone
from tuneterm.tui.protocols import Hosted
from tuneterm.tui.widgets.inputs import OrderedInput
from tuneterm.tui.widgets.tomlarea import TomlArea


@dataclass(frozen=True)
class FormField:
    key: str  # section.name
    label: str
    choices: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        return self.key.split(".")[0]

    @property
    def name(self) -> str:
        return self.key.split(".")[1]

    @property
    def widget_id(self) -> str:
        return "form-" + self.key.replace(".", "-")


def _annotation(key: str) -> Any:
    """The schema's type of `section.name`, or None when the schema has no such key."""
    section, name = key.split(".")
    model = dict(RunConfig.tables()).get(section)  # a built-in section or a kind's table
    fields = model.model_fields if model is not None else {}
    return fields[name].annotation if name in fields else None


def _field(key: str, label: str) -> FormField:
    """A form field; its choices come from the registry or the schema (Literal, bool)."""
    ann = _annotation(key)
    if key in CHOICES:
        choices = CHOICES[key]
    elif get_origin(ann) is Literal:
        choices = tuple(str(a) for a in get_args(ann))
    elif ann is bool:
        choices = ("false", "true")
    else:
        choices = ()
    return FormField(key, label, choices)


# The common fields, grouped by section (a heading shows where the section changes).
FORM: tuple[FormField, ...] = tuple(
    _field(key, label)
    for key, label in (
        ("run.name", "name"),
        ("model.source", "model source"),
        ("model.name", "model (F3: pick from a list)"),
        ("model.weights", "weights"),
        ("data.dataset", "data set"),
        ("data.image_size", "image size"),
        ("data.per_class", "per class (0 = all)"),
        ("data.fraction", "fraction of train images"),
        ("data.augment", "augmentation"),
        ("data.shift", "domain shift"),
        ("train.epochs", "epochs"),
        ("train.batch_size", "batch size"),
        ("train.lr", "learning rate"),
        ("train.optimizer", "optimizer"),
        ("train.device", "device"),
        ("train.head_lr", "head lr (0 = lr)"),
        ("train.layer_decay", "layer-wise lr decay (1 = off)"),
        ("train.label_smoothing", "label smoothing"),
        ("head.kind", "head"),
        ("head.hidden", "hidden sizes (mlp), e.g. 256"),
        ("freeze.strategy", "freezing"),
        ("freeze.stages", "stages frozen (first_n)"),
        ("freeze.every", "gradual: epochs per stage"),
        ("mix.mixup", "MixUp alpha (0 = off)"),
        ("mix.cutmix", "CutMix alpha (0 = off)"),
        ("ema.enabled", "EMA of the weights"),
        ("ema.decay", "EMA decay"),
        ("lora.enabled", "LoRA adapters"),
        ("lora.rank", "LoRA rank"),
        ("distill.teacher", "teacher (run:ID or a .pt)"),
        ("distill.alpha", "distillation weight"),
        ("distill.temperature", "temperature"),
        ("adapt.method", "domain adaptation"),
        ("adapt.target_shift", "target = data under shift"),
        ("early_stop.enabled", "early stopping"),
        ("early_stop.patience", "patience (epochs)"),
    )
    if _annotation(key) is not None
)
_DEFAULTS = RunConfig().model_dump()


def field_line(text: str, field: str) -> int | None:
    """The line (0-based) where `section.key` is set in the TOML text, or its section."""
    parts = field.split(".")
    if len(parts) < 2:
        return None
    section, key = parts[0], parts[1]
    current, section_line = "", None
    for row, line in enumerate(text.splitlines()):
        head = re.match(r"^\s*\[([^\]]+)\]", line)
        if head:
            current = head.group(1).strip()
            if current == section:
                section_line = row
            continue
        if current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return row
    return section_line


def _coerce(raw: str, f: FormField) -> Any:
    """A form value as TOML wants it: numbers stay numbers where they parse, so a typo shows
    up as a validation issue on the field instead of being dropped."""
    ann = _annotation(f.key)
    if ann is bool:
        return raw.strip().lower() in ("true", "1", "yes", "on")
    if ann is int or ann is float:
        try:
            return ann(raw)
        except ValueError:
            return raw
    if get_origin(ann) is list:
        items = [p.strip() for p in raw.split(",") if p.strip()]
        if get_args(ann) == (int,):
            return [int(p) if p.lstrip("-").isdigit() else p for p in items]
        return items
    return raw


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class EditorScreen(Hosted, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+l",
            "launch",
            "Launch",
            id="editor.launch",
            tooltip="Check the config and launch the run",
        ),
        Binding(
            "f2",
            "toggle_form",
            "Form/TOML",
            id="editor.form",
            tooltip="Switch between the form and the TOML text",
        ),
        Binding(
            "f3",
            "models",
            "Models",
            id="editor.models",
            tooltip="Pick model.name from torchvision, timm and the Hugging Face cache",
        ),
        Binding(
            "ctrl+n",
            "template",
            "Template",
            id="editor.template",
            tooltip="Replace the text with the commented template",
        ),
        Binding(
            "escape",
            "close",
            "Back (keeps draft)",
            id="editor.close",
            tooltip="Back to the run list; the text is kept as a draft",
        ),
    ]

    def __init__(self, text: str, title: str) -> None:
        super().__init__()
        self.initial, self.title_text = text, title
        self.issues: list[ConfigIssue] = []
        self.launching = False
        self._syncing = False
        self._timer: Timer | None = None
        self._checked: str | None = None  # the text the last validation read

    def compose(self) -> ComposeResult:
        yield Static(Text(f" {self.title_text}", style="bold"), id="editor-title")
        with Horizontal(id="editor-body"):
            yield TomlArea(self.initial, id="toml")
            with VerticalScroll(id="form"):
                # Each Select starts at the opened text's value: its first Changed event must
                # not write the schema default over it (a clone of a script run: dataset).
                try:
                    opened = tomllib.loads(self.initial)
                except tomllib.TOMLDecodeError:
                    opened = {}
                section = ""
                for f in FORM:
                    classes = "form-label"
                    if f.section != section:
                        section = f.section
                        yield Label(Text(f"[{section}]"), classes="form-section")
                        classes += " form-first"
                    yield Label(f.label, classes=classes)
                    if f.choices:
                        value = _show(_DEFAULTS[f.section][f.name])
                        given = _show(opened.get(f.section, {}).get(f.name, value))
                        yield Select(
                            [(c, c) for c in f.choices],
                            allow_blank=False,
                            value=given if given in f.choices else value,
                            id=f.widget_id,
                            compact=True,
                        )
                    else:
                        yield OrderedInput(id=f.widget_id, compact=True)
        yield Static("", id="issues")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        area = self.query_one(TomlArea)
        area.use_dark(self.app.current_theme.dark)
        self.app.theme_changed_signal.subscribe(self, lambda t: area.use_dark(t.dark))
        area.focus()
        self.validate()
        self.sync_form()

    @property
    def text(self) -> str:
        return self.query_one(TomlArea).text

    # -- validation ----------------------------------------------------------------------------
    @on(TextArea.Changed, "#toml")
    def toml_changed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.15, self._after_edit)

    def _after_edit(self) -> None:
        # The debounce timer can fire late on a loaded machine: for text already checked
        # (e.g. by a launch since) it would only wipe what was shown after, the launch's errors.
        if self.text == self._checked:
            return
        self.validate()
        if not self._syncing:
            self.sync_form()

    def validate(self) -> RunConfig | None:
        text = self._checked = self.text
        try:
            cfg = loads(text, source="editor")
        except ConfigError as exc:
            self.show_issues(exc.issues)
            return None
        issues = modelnames.quick_issues(cfg)
        self.show_issues(issues)
        return None if issues else cfg

    def show_issues(self, issues: list[ConfigIssue], error: str = "") -> None:
        self.issues = issues
        text = self.text
        lines: set[int] = set()
        out = Text()
        if error:
            out.append(f" ✗ {error}\n", style="bold red")
        for issue in issues:
            row = field_line(text, issue.field)
            if issue.field == "(toml)":
                m = re.search(r"at line (\d+)", issue.reason)
                row = int(m.group(1)) - 1 if m else None
            if row is not None:
                lines.add(row)
            where = f"line {row + 1:>3}  " if row is not None else "          "
            out.append(" ✗ ", style="bold red")
            out.append(where, style="dim")
            out.append(f"{issue}\n")
        if not issues and not error:
            if self.launching:
                out.append(" … launching (checking the model with torchvision first)", style="bold")
            else:
                out.append(" ✓ valid", style="bold green")
                out.append(
                    "  ctrl+l launches   f2 form   esc back (the draft is kept)", style="dim"
                )
        out.rstrip()
        self.query_one("#issues", Static).update(out)
        self.query_one(TomlArea).mark_errors(lines)
        bad = {i.field for i in issues}
        for f in FORM:
            self.query_one(f"#{f.widget_id}").set_class(f.key in bad, "has-issue")

    # -- the form ------------------------------------------------------------------------------
    def sync_form(self) -> None:
        """TOML -> form, when the TOML parses."""
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError:
            return
        self._syncing = True
        try:
            for f in FORM:
                section = data.get(f.section, {})
                value = section.get(f.name, _DEFAULTS[f.section][f.name])
                widget = self.query_one(f"#{f.widget_id}")
                if isinstance(widget, Select):
                    shown = _show(value)
                    if shown in f.choices and widget.value != shown:
                        with widget.prevent(Select.Changed):
                            widget.value = shown
                elif (
                    isinstance(widget, Input)
                    and not widget.has_focus  # being typed in: the TOML follows it, not back
                    and widget.value != _show(value)
                    and _coerce(widget.value, f) != value  # keep text being typed: "256, "
                ):
                    with widget.prevent(Input.Changed):
                        widget.value = _show(value)
        finally:
            self._syncing = False

    @on(Input.Changed, "#form Input")
    @on(Select.Changed, "#form Select")
    def form_changed(self, event: Input.Changed | Select.Changed) -> None:
        if self._syncing or event.control.id is None:
            return
        f = next((f for f in FORM if f.widget_id == event.control.id), None)
        if f is None:
            return
        try:
            doc = tomlkit.parse(self.text)
        except Exception:
            self.notify("Fix the TOML syntax first; the form writes into it.", severity="warning")
            return
        value = _coerce(str(event.value), f)
        if f.section not in doc:
            doc.add(f.section, tomlkit.table())
        doc[f.section][f.name] = value
        area = self.query_one(TomlArea)
        cursor = area.cursor_location
        self._syncing = True
        area.text = tomlkit.dumps(doc)
        self._syncing = False
        row = min(cursor[0], area.document.line_count - 1)
        area.cursor_location = (row, min(cursor[1], len(area.document.get_line(row))))

    def action_toggle_form(self) -> None:
        """TOML -> form -> hidden form (a wider TOML) -> form again."""
        form = self.query_one("#form")
        area = self.query_one(TomlArea)
        if form.display and self.focused is not None and self.focused is not area:
            form.display = False
            area.focus()
            return
        form.display = True
        form.query("Input, Select").first().focus()

    def action_models(self) -> None:
        from tuneterm.tui.screens.modelpicker import ModelPicker

        field = self.query_one("#form-model-name", Input)
        self.app.push_screen(ModelPicker(field.value), self._model_picked)

    def _model_picked(self, name: str | None) -> None:
        if name:  # through the form field, which writes it into the TOML
            self.query_one("#form-model-name", Input).value = name

    def action_template(self) -> None:
        self.query_one(TomlArea).text = template()
        self.notify("Replaced with the template (ctrl+z undoes).", timeout=3)

    # -- launch --------------------------------------------------------------------------------
    def action_launch(self) -> None:
        if self.launching:
            return
        cfg = self.validate()
        if cfg is None:
            self.app.bell()
            self.notify(
                f"Not launched: {len(self.issues)} problem(s), marked in red. Nothing was lost.",
                severity="error",
            )
            return
        self.launching = True
        self.show_issues([])
        self.launch(cfg)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def launch(self, cfg: RunConfig) -> None:
        try:
            info = launcher.start(self.host.store, cfg)
        except ConfigError as exc:
            self.post_message(LaunchDone(issues=exc.issues))
            return
        except Exception as exc:  # shown in the editor, with the text kept
            self.post_message(LaunchDone(error=str(exc) or type(exc).__name__))
            return
        self.post_message(LaunchDone(run_id=info.id))

    @on(LaunchDone)
    def launch_done(self, message: LaunchDone) -> None:
        self.launching = False
        if message.run_id:
            self.host.draft = None
            self.host.pending_select = message.run_id
            self.notify(f"launched {message.run_id}", timeout=4)
            self.dismiss(None)
            return
        # The reason stays in the issues box, and no toast covers it.
        self.show_issues(message.issues, message.error and f"launch failed: {message.error}")
        self.app.bell()

    def action_close(self) -> None:
        text = self.text
        if text != self.initial or self.title_text.endswith("(draft)"):
            self.host.draft = (text, self.title_text.removesuffix(" (draft)"))
            self.notify("Draft kept: press n to come back to it.", timeout=3)
        self.dismiss(None)
