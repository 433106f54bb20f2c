"""Count the imports of tuneterm's own modules made inside functions (not at a module's top).

Such an import hides an edge from a reader of the module's head; it belongs there only to keep
a heavy library (torch, textual, ...) out of a process's start-up. Prints the count, and with
--list each import as path:line, function, module.

    python bench/inner_imports.py [--list] [PACKAGE_DIR]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def inner_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, function, imported module) for each tuneterm import inside a function of `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if func and isinstance(child, ast.Import):
                found.extend((child.lineno, func, a.name) for a in child.names if _ours(a.name, 0))
            elif func and isinstance(child, ast.ImportFrom) and _ours(child.module, child.level):
                found.append((child.lineno, func, "." * child.level + (child.module or "")))
            visit(child, func)

    visit(tree, "")
    return found


def _ours(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] == "tuneterm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).parents[1] / "tuneterm"))
    parser.add_argument("--list", action="store_true", help="print each import")
    args = parser.parse_args()
    root = Path(args.package)
    total = 0
    for path in sorted(root.rglob("*.py")):
        for line, func, module in inner_imports(path):
            total += 1
            if args.list:
                print(f"{path.relative_to(root.parent)}:{line}  {func}()  {module}")
    print(f"{total} imports of tuneterm inside functions under {root}")


if __name__ == "__main__":
    main()
