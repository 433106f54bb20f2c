"""Import boundaries: textual only in tuneterm/tui; torch never at CLI/TUI/store start-up;
the engine imports neither textual nor the CLI; checkpoints load with weights_only=True."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "tuneterm"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(sub: str = "") -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def test_textual_only_inside_tui() -> None:
    offenders = [
        str(p.relative_to(PKG))
        for p in _modules()
        if "tui" not in p.relative_to(PKG).parts
        and any(
            n == "textual" or n.startswith(("textual.", "textual_plotext")) for n in _imports(p)
        )
    ]
    assert offenders == []


def test_engine_imports_neither_textual_nor_cli() -> None:
    for path in _modules("engine"):
        names = _imports(path)
        assert not any(n.startswith(("textual", "tuneterm.tui", "tuneterm.cli")) for n in names), (
            path
        )


@pytest.mark.parametrize(
    "module",
    [
        "tuneterm.cli",
        "tuneterm.store",
        "tuneterm.runs.launcher",
        "tuneterm.runs.report",
        "tuneterm.tui.app",
    ],
)
def test_startup_modules_do_not_import_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules, 'torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout


def test_ls_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from tuneterm.cli import main; "
        "main(['--runs-dir', sys.argv[1], 'ls', '--json']);"
        "print('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert "TORCH False" in out.stdout


def test_every_torch_load_is_weights_only() -> None:
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert kw.get("weights_only") == "True", f"{path}: {ast.unparse(node)}"


def test_no_eval_or_exec() -> None:
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), f"{path}:{node.lineno}"


def test_task_kinds_registry_matches_the_task_specs() -> None:
    # run.task is checked without torch from the task specs (tuneterm.tasks); the engine
    # dispatches through tuneterm.engine.kinds.TASKS: both must name the same kinds, and each
    # module must load.
    from tuneterm import tasks as specs
    from tuneterm.engine import kinds as tasks

    assert set(tasks.TASKS) == set(specs.names())
    for name in tasks.TASKS:
        module = tasks.get(name)
        assert callable(module.validate) and callable(module.build)


def test_run_detach_of_a_classify_config_does_not_import_torch(
    runs_dir: Path, tiny_config: Path
) -> None:
    """Launch checks read the model catalog: once it is cached (the first launch after an
    install builds it), `run --detach` imports no torch in the CLI process; the engine does."""
    import os

    warm = "from tuneterm.config import catalog; catalog.input_size_problem('resnet18', 16)"
    subprocess.run([sys.executable, "-c", warm], check=True)
    code = (
        "import sys; from tuneterm.cli import main; "
        "c = main(['--runs-dir', sys.argv[1], 'run', sys.argv[2], '--detach']); "
        "print('TORCH', 'torch' in sys.modules, 'torchvision' in sys.modules, c)"
    )
    env = {**os.environ, "TUNETERM_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(runs_dir), str(tiny_config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "TORCH False False 0" in out.stdout, (out.stdout, out.stderr)
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 1
