"""Enforce the direction of imports. Run by `make check`; exits 1 naming every offending import
as file:line.

1. Packages: `conductor` uses `jobboard` and `persistence`; those two never import `conductor`
   nor each other.

2. Layers inside `conductor`: a module imports modules of its own layer or of a layer below,
   never of a layer above. A module is in the layer of the longest entry of LAYERS that names it
   or one of its packages (`conductor` alone names only the package's `__init__`); a module in
   no layer is an error: every new module gets a place.

   layer  modules (in `conductor.`)          what they are
   -----  ---------------------------------  -------------------------------------------------
   6      cli                                the command line
   5      daemon, chaos, demo,               the programs, and what only they use: the
          config, ledger, testing            operator's settings, the task ledger, the harness
   4      registry, workbook                 the flows a conductor knows (Python and YAML)
   3      delegation, http                   completions from outside, the deadline keeper, the
                                             HTTP front end
   2      engine                             compiler, passive core, runner, dispatchers,
                                             delegated attempts
   1      flow                               the flow API: tasks, patterns, retry, task context
   0      jobfields, the package itself      names shared by every layer (import nothing)

   Names a lazy package `__init__` exports (its `_HOMES` table, PEP 562) count as its imports.

3. ZooKeeper is jobboard's business: `conductor` and `persistence` never import kazoo; they
   reach ZooKeeper through the board and its recipes (`jobboard.recipes`).

4. The passive core imports no third-party package: `conductor/engine/core.py` and every
   project module it imports (transitively, with the packages that contain them) import only
   the standard library and each other, so the core runs anywhere. Imports under
   `if TYPE_CHECKING:` and lazy `_HOMES` entries do not run on import and are not counted.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT = ("conductor", "jobboard", "persistence")

FORBIDDEN = {
    "jobboard": {"conductor", "persistence"},
    "persistence": {"conductor", "jobboard"},
}

LAYERS = {
    "conductor.cli": 6,
    "conductor.daemon": 5,
    "conductor.chaos": 5,
    "conductor.demo": 5,
    "conductor.config": 5,
    "conductor.ledger": 5,
    "conductor.testing": 5,
    "conductor.registry": 4,
    "conductor.workbook": 4,
    "conductor.delegation": 3,
    "conductor.http": 3,
    "conductor.engine": 2,
    "conductor.flow": 1,
    "conductor.jobfields": 0,
    "conductor": 0,
}

KAZOO_FREE = ("conductor", "persistence")
"""Packages that must not import kazoo (tests and benchmarks may use it directly)."""

PURE_ROOTS = ("conductor.engine.core",)


@dataclass(frozen=True)
class Import:
    """One imported project module or third-party package, where it is imported."""

    line: int
    module: str  # dotted name: the module itself for project modules, else the top package
    runs: bool  # runs when the importing module is imported (not TYPE_CHECKING, not lazy)


class Project:
    """The project's modules, parsed once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        for package in PROJECT:
            for path in sorted((root / package).rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                self.files[".".join(parts)] = path
        self._imports: dict[str, list[Import]] = {}

    def where(self, module: str, line: int) -> str:
        return f"{self.files[module].relative_to(self.root)}:{line}"

    def imports(self, module: str) -> list[Import]:
        if module not in self._imports:
            tree = ast.parse(self.files[module].read_text(), filename=str(self.files[module]))
            self._imports[module] = list(dict.fromkeys(self._collect(module, tree)))
        return self._imports[module]

    def _collect(self, module: str, tree: ast.Module) -> Iterator[Import]:
        skipped = {id(node) for block in _type_checking_blocks(tree) for node in ast.walk(block)}
        for node in ast.walk(tree):
            runs = id(node) not in skipped
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(node.lineno, self._target(alias.name), runs)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node)
                if base == "__future__":
                    continue
                for alias in node.names:
                    found = f"{base}.{alias.name}"
                    yield Import(node.lineno, self._target(found if found in self.files
                                                           else base), runs)
        for line, home in _lazy_homes(tree):
            yield Import(line, self._target(home), runs=False)

    def _absolute(self, module: str, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        package = module if self.files[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        return f"{package}.{node.module}" if node.module else package

    def _target(self, name: str) -> str:
        top = name.partition(".")[0]
        return name if top in PROJECT else top


def _type_checking_blocks(tree: ast.Module) -> list[ast.If]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))]


def _lazy_homes(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """The modules named by a module-level `_HOMES = {name: "module", ...}`."""
    for node in tree.body:
        if (isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "_HOMES"
                        for t in (node.targets if isinstance(node, ast.Assign)
                                  else [node.target]))):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield value.lineno, value.value


def layer_of(module: str) -> int | None:
    """The layer of a `conductor` module (None: in no layer). The entry `conductor` names the
    package itself only, not everything in it."""
    if module in LAYERS:
        return LAYERS[module]
    parts = module.split(".")
    for end in range(len(parts) - 1, 1, -1):
        layer = LAYERS.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    return None


def package_rule(project: Project) -> list[str]:
    errors = []
    for module in project.files:
        package = module.split(".")[0]
        for found in project.imports(module):
            imported = found.module.split(".")[0]
            if imported in FORBIDDEN.get(package, ()):
                errors.append(f"{project.where(module, found.line)}: {package} must not "
                              f"import {imported}")
    return errors


def layer_rule(project: Project) -> list[str]:
    errors = []
    for module in project.files:
        if module.split(".")[0] != "conductor":
            continue
        own = layer_of(module)
        if own is None:
            errors.append(f"{project.where(module, 1)}: {module} is in no layer of "
                          "tools/check_imports.py (add it to LAYERS)")
            continue
        for found in project.imports(module):
            if found.module.split(".")[0] != "conductor":
                continue
            other = layer_of(found.module)
            if other is not None and other > own:
                errors.append(f"{project.where(module, found.line)}: {module} (layer {own}) "
                              f"must not import {found.module} (layer {other}, above it)")
    return errors


def kazoo_rule(project: Project) -> list[str]:
    """Every import of kazoo outside jobboard, lazy or under TYPE_CHECKING included."""
    errors = []
    for module in project.files:
        package = module.split(".")[0]
        if package not in KAZOO_FREE:
            continue
        errors.extend(
            f"{project.where(module, found.line)}: {package} must not import kazoo (use "
            "jobboard and jobboard.recipes)"
            for found in project.imports(module) if found.module == "kazoo")
    return errors


def pure_core_rule(project: Project) -> list[str]:
    """Third-party imports of the passive core and of every project module it loads."""
    errors = []
    stdlib = sys.stdlib_module_names
    via: dict[str, str] = {root: "" for root in PURE_ROOTS}
    todo = list(PURE_ROOTS)
    while todo:
        module = todo.pop()
        for found in project.imports(module):
            if not found.runs:
                continue
            if found.module.split(".")[0] not in PROJECT:
                if found.module not in stdlib:
                    chain = _chain(module, via)
                    errors.append(f"{project.where(module, found.line)}: the passive core must "
                                  f"import no third-party package, but {module} imports "
                                  f"{found.module}{chain}")
                continue
            for loaded in _with_packages(found.module, project):
                if loaded not in via:
                    via[loaded] = module
                    todo.append(loaded)
    return errors


def _with_packages(module: str, project: Project) -> list[str]:
    """`module` and every package that contains it (importing it runs their __init__)."""
    parts = module.split(".")
    names = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return [name for name in names if name in project.files]


def _chain(module: str, via: dict[str, str]) -> str:
    steps = [module]
    while via.get(steps[-1]):
        steps.append(via[steps[-1]])
    if len(steps) == 1:
        return ""
    return " (loaded by " + " <- ".join(steps[1:]) + ")"


def check(root: Path) -> list[str]:
    """Every violation in the project at `root`, as "file:line: what"."""
    project = Project(root)
    return [*package_rule(project), *layer_rule(project), *kazoo_rule(project),
            *pure_core_rule(project)]


def main() -> int:
    errors = check(Path(__file__).resolve().parent.parent)
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
