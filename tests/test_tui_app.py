"""Pilot tests of the app-wide parts: help, command palette, keymap overrides and themes."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.fake_store import make_store, new_app, pilot, screen_text, until
from textual.command import CommandList

from tuneterm.tui.screens.dialogs import HelpScreen
from tuneterm.tui.screens.editor import EditorScreen
from tuneterm.tui.screens.main import MainScreen
from tuneterm.tui.settings import load_settings
from tuneterm.tui.widgets.runtable import RunTable


@pytest.fixture
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "settings"
    path.mkdir()
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(path))
    return path


@pilot
async def test_help_lists_every_key_with_its_id(tmp_path: Path, settings_dir: Path) -> None:
    app = new_app(make_store(tmp_path / "runs", 1))
    async with app.run_test(size=(120, 80)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for words in ("Stop", "run.stop", "Kill", "run.kill", "Rename", "Compare", "Theme",
                      "Loss smoothing", "chart.log_y", "Filter"):  # fmt: skip
            assert words in text, words
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


@pilot
async def test_palette_offers_the_actions(tmp_path: Path, settings_dir: Path) -> None:
    app = new_app(make_store(tmp_path / "runs", 1))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("New", "Stop", "Kill", "Delete", "Compare", "Loss smoothing", "Theme"):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"New")

        def new_is_highlighted() -> bool:  # the palette's search runs in a worker
            lists = app.screen.query(CommandList)
            at = lists.first().highlighted if lists else None
            if at is None:
                return False
            prompt = str(lists.first().get_option_at_index(at).prompt)  # title, then help
            return prompt.splitlines()[0] == "New"

        await until(pilot, new_is_highlighted, what="the palette offers New")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="palette runs New")


@pilot
async def test_keymap_override(tmp_path: Path, settings_dir: Path) -> None:
    (settings_dir / "keymap.toml").write_text('[keys]\n"run.new" = "a"\n"no.such" = "b"\n')
    app = new_app(make_store(tmp_path / "runs", 1))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(
            pilot, lambda: "no.such" in " ".join(str(n.message) for n in app._notifications)
        )
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen))


@pilot
async def test_theme_switch_is_remembered_and_user_themes_load(
    tmp_path: Path, settings_dir: Path
) -> None:
    (settings_dir / "themes").mkdir()
    (settings_dir / "themes" / "mine.toml").write_text('primary = "#ff00ff"\ndark = true\n')
    store = make_store(tmp_path / "runs", 1)
    app = new_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.theme == "tuneterm-dark" and "mine" in app.available_themes
        await pilot.press("T")
        assert app.theme == "tuneterm-light"
        await until(pilot, lambda: load_settings().theme == "tuneterm-light")
    app = new_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.theme == "tuneterm-light"
        await until(pilot, lambda: app.screen.query_one(RunTable).row_count == 1)


@pilot
async def test_T_cycles_every_theme_and_goes_on_from_one_picked_in_the_palette(
    tmp_path: Path,
) -> None:
    app = new_app(make_store(tmp_path / "runs", 1))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        seen = {app.theme}
        for _ in range(len(app.available_themes)):
            await pilot.press("T")
            seen.add(app.theme)
        assert seen == set(app.available_themes)  # Textual's own too, not only tuneterm's two
        app.theme = "nord"  # as the command palette sets it
        await pilot.press("T")
        assert app.theme not in ("nord", "tuneterm-dark")  # on from nord, not back to the start
