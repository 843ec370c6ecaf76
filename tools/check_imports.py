"""Enforce the one direction of imports: conductor uses jobboard and persistence, never back.

Run by `make check`. Exits 1 naming every offending import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FORBIDDEN = {
    "jobboard": {"conductor", "persistence"},
    "persistence": {"conductor", "jobboard"},
}


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """Top-level package names imported by a module, with line numbers."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    errors = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, name in imported_packages(tree):
                if name in forbidden:
                    where = f"{path.relative_to(root)}:{line}"
                    errors.append(f"{where}: {package} must not import {name}")
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
