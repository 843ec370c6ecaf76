"""Enforce the one direction of imports: conductor uses jobboard and persistence, never back;
and kazoo only in jobboard (conductor and persistence reach ZooKeeper through the board and its
recipes, never through kazoo).

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
KAZOO_FREE = ("conductor", "persistence")
"""Packages that must not import kazoo (ZooKeeper is jobboard's business)."""


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """Top-level package names imported by a module, with line numbers."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def kazoo_imports(root: Path) -> list[str]:
    """Every import of kazoo outside jobboard (tests and benchmarks may use it directly)."""
    errors = []
    for package in KAZOO_FREE:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, name in imported_packages(tree):
                if name == "kazoo":
                    errors.append(f"{path.relative_to(root)}:{line}: {package} must not import "
                                  "kazoo (use jobboard and jobboard.recipes)")
    return errors


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    errors = kazoo_imports(root)
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
