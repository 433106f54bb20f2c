"""The TUI's pure parts: series and downsampling, rows and filters, settings, themes, TOML."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.fake_store import make_run, make_store

from tuneterm.tui.history import RunHistory, curve, downsample, ema
from tuneterm.tui.rows import bar, cells, matches, parse_filter, sort_runs
from tuneterm.tui.screens.compare import config_diff
from tuneterm.tui.screens.editor import field_line
from tuneterm.tui.settings import BUILTIN_THEMES_DIR, load_settings, save_theme
from tuneterm.tui.themes import load_theme, load_themes
from tuneterm.tui.widgets.tomlarea import toml_highlights

ROOT = Path(__file__).resolve().parents[1]


def test_downsample_keeps_extremes_and_bounds_points() -> None:
    x = np.arange(1_000_000, dtype=float)
    y = np.sin(x / 1000)
    y[123_456] = 50.0  # a spike must survive
    xs, ys = downsample(x, y, 100)
    assert len(xs) <= 200
    assert ys.max() == 50.0
    assert ys.min() == pytest.approx(-1.0, abs=1e-3)
    assert np.all(np.diff(xs) >= 0)


def test_downsample_small_series_untouched_and_nan_dropped() -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, math.nan, 3.0])
    xs, ys = downsample(x, y, 100)
    assert xs.tolist() == [1.0, 3.0] and ys.tolist() == [1.0, 3.0]


def test_ema_smooths_and_column_weights() -> None:
    y = np.array([0.0, 10.0, 0.0, 10.0])
    assert ema(y, 0.0) is y
    s = ema(y, 0.9)
    assert s[0] == 0.0 and 0 < s[-1] < 10
    c = curve(np.arange(10_000.0), np.ones(10_000), 50, smoothing=0.9)
    assert len(c.x) <= 100 and all(v == pytest.approx(1.0) for v in c.y)


def test_log_y_drops_non_positive() -> None:
    c = curve(np.arange(4.0), np.array([0.0, 1.0, -1.0, 2.0]), 50, log_y=True)
    assert c.y == [1.0, 2.0]


def test_history_resume_drops_replayed_steps() -> None:
    h = RunHistory()
    h.add({"seq": i, "t": 100.0 + i, "kind": "train", "step": i, "loss": 1.0} for i in range(1, 11))
    h.add([{"seq": 11, "t": 120.0, "kind": "val", "step": 10, "epoch": 1, "val_acc": 0.5}])
    h.add([{"seq": 12, "t": 130.0, "kind": "resume", "step": 6, "epoch": 0, "batch": 6}])
    assert h.train.np("step").tolist() == [1, 2, 3, 4, 5, 6]
    assert len(h.val) == 0
    h.add([{"seq": 13, "t": 131.0, "kind": "train", "step": 7, "loss": 0.5}])
    assert len(h.train) == 7 and h.train.np("loss")[-1] == 0.5
    assert any("resumed at step 6" in line.msg for line in h.logs)


def test_history_grows_past_capacity_and_x_axes() -> None:
    h = RunHistory()
    h.add({"seq": i, "t": 60.0 * i, "kind": "train", "step": i, "epoch": 1, "loss": 1.0}
          for i in range(1, 1001))  # fmt: skip
    assert len(h.train) == 1000
    assert h.x_of(h.train, "epoch", steps_per_epoch=100)[-1] == 10.0
    assert h.x_of(h.train, "time")[-1] == pytest.approx(999.0)  # minutes since the first event


def test_filter_terms(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    runs = {r.name: r for r in store.list()}
    make_run(store, "tagged", "completed", tags=("baseline",), events=False)
    runs = {r.name: r for r in store.list()}
    assert matches(runs["run1"], parse_filter("status:failed"))
    assert not matches(runs["run0"], parse_filter("status:failed"))
    assert matches(runs["tagged"], parse_filter("tag:base"))
    assert matches(runs["run0"], parse_filter("RUN0 resnet"))
    cfg = {"train.lr": 0.002, "train.epochs": 3, "data.classes": ["0", "1"]}
    assert matches(runs["run1"], parse_filter("lr>0.001"), cfg)
    assert matches(runs["run1"], parse_filter("train.lr=0.002 epochs<=3"), cfg)
    assert not matches(runs["run1"], parse_filter("lr<0.001"), cfg)
    assert matches(runs["run1"], parse_filter("classes=1"), cfg)
    assert not matches(runs["run1"], parse_filter("lr>0.001"), None)  # config not read yet


def test_sort_and_cells(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    runs = store.list()
    by_name = [r.name for r in sort_runs(runs, "name", False)]
    assert by_name == ["run0", "run1", "run2"]
    best = [r.name for r in sort_runs(runs, "best", True)]
    assert best[0] == "run0"
    row = cells(runs[0], marked=True)
    assert row["mark"] == "●" and row["model"] == "resnet18" and row["id"] == runs[0].id
    assert bar(0.5, 4).startswith("██") and bar(None) == ""


def test_settings_keymap_and_theme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETERM_CONFIG_DIR", str(tmp_path))
    (tmp_path / "keymap.toml").write_text('[keys]\n"run.stop" = "ctrl+s"\n"run.kill" = 3\n')
    s = load_settings()
    assert s.keymap == {"run.stop": "ctrl+s"}
    assert any("run.kill" in p for p in s.problems)
    # Bare dotted keys (as the help screen shows them) parse as nested tables: same result.
    (tmp_path / "keymap.toml").write_text('[keys]\nrun.stop = "ctrl+s"\nchart.log_y = "l"\n')
    assert load_settings().keymap == {"run.stop": "ctrl+s", "chart.log_y": "l"}
    assert save_theme("tuneterm-light") == ""
    assert load_settings().theme == "tuneterm-light"
    (tmp_path / "settings.toml").write_text("theme = [")
    assert load_settings().problems


def test_themes_load_builtin_and_report_bad(tmp_path: Path) -> None:
    themes, problems = load_themes(BUILTIN_THEMES_DIR)
    names = {t.name for t in themes}
    assert {"tuneterm-dark", "tuneterm-light"} <= names and not problems
    assert any(not t.dark for t in themes)
    (tmp_path / "bad.toml").write_text('name = "bad"\ncolour = "#fff"\n')
    (tmp_path / "mine.toml").write_text('primary = "#ff0000"\ndark = false\n')
    themes, problems = load_themes(tmp_path)
    assert [t.name for t in themes] == ["mine"] and "primary is required" in problems[0]
    assert load_theme(tmp_path / "mine.toml").primary == "#ff0000"


def test_stylesheet_and_themes_ship_inside_the_package() -> None:
    import tomllib

    from tuneterm.tui.app import TuneTermApp

    package = ROOT / "tuneterm"
    here = Path(sys.modules[TuneTermApp.__module__].__file__ or "").parent
    css = here / str(TuneTermApp.CSS_PATH)
    assert css.is_file() and package in css.parents
    assert BUILTIN_THEMES_DIR.is_dir() and package in BUILTIN_THEMES_DIR.parents
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "data-files" not in setuptools
    for pattern in setuptools["package-data"]["tuneterm"]:
        assert list(package.glob(pattern)), f"package-data lists {pattern}, which matches no file"


def test_toml_highlights_and_field_lines() -> None:
    text = '[train]\n# lr\nlr = 0.1  # peak\nname = "a"\nflag = true\n'
    hl = toml_highlights(text.splitlines())
    assert hl[0] == [(0, 7, "toml.type")]
    kinds = [k for _, _, k in hl[2]]
    assert kinds == ["css.property", "number", "comment"]
    assert "string" in [k for _, _, k in hl[3]] and "boolean" in [k for _, _, k in hl[4]]
    assert field_line(text, "train.lr") == 2
    assert field_line(text, "train.epochs") == 0  # not set: point at its section
    assert field_line(text, "model.name") is None


def test_config_diff_only_differing_keys() -> None:
    diff = config_diff({"a": {"x": 1, "y": 2}, "b": {"x": 1, "y": 3, "z": 0}})
    assert diff == [("y", [2, 3]), ("z", ["—", 0])]


def test_tui_import_does_not_load_torch() -> None:
    code = "import sys, tuneterm.tui.app; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_only_tui_imports_textual() -> None:
    offenders = []
    for path in (ROOT / "tuneterm").rglob("*.py"):
        if "tui" in path.relative_to(ROOT / "tuneterm").parts:
            continue
        text = path.read_text()
        if "import textual" in text or "from textual" in text:
            offenders.append(str(path))
    assert offenders == []


def test_pipeline_names_the_transforms_the_engine_builds() -> None:
    """The config pane describes each augmentation preset without torch; the engine builds
    it with torchvision: the two name the same transforms, in the same order."""
    from tuneterm.config import CHOICES
    from tuneterm.engine.techniques.augment import PRESETS as BUILT
    from tuneterm.tui.pipeline import PRESETS, describe

    assert set(PRESETS) == set(CHOICES["data.augment"]) == set(BUILT)
    for name, steps in PRESETS.items():
        assert [s.split("(")[0] for s in steps(16)] == [type(t).__name__ for t in BUILT[name](16)]
    text = describe('[data]\nimage_size = 16\naugment = "light"\n[mix]\ncutmix = 1.0')
    assert "RandomCrop(size=16, padding=2)" in text and "CutMix(alpha=1.0)" in text
    text = describe('[run]\ntask = "text"\n[data]\ndataset = "topics"')
    assert "tokenise with minilm" in text and "uint8" not in text
    assert describe("[train]\nlr = -1").startswith("cannot resolve the pipeline")


def test_compare_rows_follow_the_spec_and_each_direction(tmp_path: Path) -> None:
    from tuneterm.store import RunStore
    from tuneterm.tui.panes.acc import chart_title
    from tuneterm.tui.screens.compare import metric_columns, metric_rows, table_header

    store = RunStore(tmp_path)
    mae = {"name": "val_mae", "label": "MAE", "higher": False, "fmt": ".3f"}
    score = {"name": "val_score", "label": "score", "fmt": ".2f"}
    spec = {"task": "digit-regress", "best": "val_mae", "higher": False,
            "val": [mae, score], "test": []}  # fmt: skip
    reg = make_run(store, "reg", events=False, task="digit-regress", metrics=spec, classes=[])
    cls = make_run(store, "cls")  # 3 classes: no top-5
    ten = make_run(store, "ten", classes=[str(i) for i in range(10)])
    h = RunHistory()
    h.add({"kind": "val", "step": s, "epoch": s, "val_mae": m, "val_score": sc}
          for s, m, sc in ((1, 0.5, 0.2), (2, 0.3, 0.6), (3, 0.4, 0.5)))  # fmt: skip
    ch = RunHistory()
    ch.add(store.events(cls.id).poll())
    columns = metric_columns([reg, cls, ten])
    header = table_header(columns)
    assert header == ["run", "status", "epoch", "val MAE", "val score", "val acc", "val top-5",
                      "val loss", "loss", "test acc", "test top-5"]  # fmt: skip
    rows = metric_rows([reg, cls, ten], {reg.id: h, cls.id: ch, ten.id: ch}, columns)
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    assert cells[0]["val MAE"] == "0.300 / 0.400"  # lower is better
    assert cells[0]["val score"] == "0.60 / 0.50"  # higher is better
    assert cells[0]["val acc"] == "" and cells[1]["val MAE"] == ""
    assert cells[1]["val loss"] == "0.3333 / 0.3333"  # val loss 1/e: best is the lowest
    assert cells[1]["test acc"] == "0.9000"
    assert cells[1]["val top-5"] == cells[1]["test top-5"] == ""  # 3 classes: always 1
    assert cells[2]["val top-5"] == "1.0000 / 1.0000" and cells[2]["test top-5"] == "1.0000"
    assert chart_title([reg, cls]) == "val MAE / acc"


def test_the_top_level_themes_folder_holds_the_packaged_themes_unchanged() -> None:
    """`themes/` is what a user copies and edits; the app loads the packaged copies."""
    from tuneterm.tui.settings import BUILTIN_THEMES_DIR
    from tuneterm.tui.themes import load_themes

    top = Path(__file__).resolve().parent.parent / "themes"
    packaged = {p.name: p.read_bytes() for p in BUILTIN_THEMES_DIR.glob("*.toml")}
    assert packaged and {p.name: p.read_bytes() for p in top.glob("*.toml")} == packaged
    themes, problems = load_themes(top)
    assert problems == [] and {t.name for t in themes} == {"tuneterm-dark", "tuneterm-light"}
