"""tools/check_imports.py: each rule reports what breaks it as file:line, on small made-up
projects, and the real project passes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports",
                                                  ROOT / "tools" / "check_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


check = _tool().check

BASE = {
    "conductor/__init__.py": "",
    "conductor/engine/__init__.py": "",
    "conductor/engine/core.py": "import heapq\nfrom conductor.engine import graph\n",
    "conductor/engine/graph.py": "from persistence.records import Record\n",
    "conductor/daemon/__init__.py": "from conductor.engine.core import Core\n",
    "persistence/__init__.py": "",
    "persistence/records.py": "import enum\n",
    "jobboard/__init__.py": "",
}


def _project(tmp_path: Path, changes: dict[str, str] | None = None) -> Path:
    """A made-up project: BASE with `changes` (file path -> text)."""
    for name, text in {**BASE, **(changes or {})}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_project_follows_every_rule() -> None:
    assert check(ROOT) == []


def test_a_clean_made_up_project_passes(tmp_path: Path) -> None:
    assert check(_project(tmp_path)) == []


def test_a_lower_layer_importing_a_higher_one_is_reported(tmp_path: Path) -> None:
    root = _project(tmp_path, {
        "conductor/engine/graph.py": "import os\n\nfrom conductor.daemon import x\n"})
    assert check(root) == [
        "conductor/engine/graph.py:3: conductor.engine.graph (layer 2) must not import "
        "conductor.daemon (layer 5, above it)",
    ]


def test_a_lazy_export_of_a_higher_layer_counts_as_an_import(tmp_path: Path) -> None:
    root = _project(tmp_path, {
        "conductor/engine/__init__.py": '_HOMES = {\n    "Thing": "conductor.cli.x",\n}\n'})
    [error] = check(root)
    assert error.startswith("conductor/engine/__init__.py:2: conductor.engine (layer 2) must "
                            "not import conductor.cli.x")


def test_a_module_in_no_layer_is_reported(tmp_path: Path) -> None:
    root = _project(tmp_path, {"conductor/extras.py": ""})
    assert check(root) == ["conductor/extras.py:1: conductor.extras is in no layer of "
                           "tools/check_imports.py (add it to LAYERS)"]


def test_a_third_party_import_anywhere_the_core_loads_is_reported_with_the_chain(
        tmp_path: Path) -> None:
    root = _project(tmp_path, {
        "persistence/__init__.py": "from persistence import sql\n",
        "persistence/sql.py": "\n\nimport sqlalchemy.orm\n"})
    assert check(root) == [
        "persistence/sql.py:3: the passive core must import no third-party package, but "
        "persistence.sql imports sqlalchemy (loaded by persistence <- conductor.engine.graph "
        "<- conductor.engine.core)",
    ]


@pytest.mark.parametrize("guarded", [
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy\n",
    '_HOMES = {"Engine": "sqlalchemy"}\n',
])
def test_imports_that_do_not_run_on_import_do_not_make_the_core_impure(
        tmp_path: Path, guarded: str) -> None:
    assert check(_project(tmp_path, {"persistence/__init__.py": guarded})) == []


def test_packages_keep_their_direction(tmp_path: Path) -> None:
    root = _project(tmp_path, {"persistence/records.py": "import enum\nimport jobboard\n"})
    assert check(root) == ["persistence/records.py:2: persistence must not import jobboard"]
