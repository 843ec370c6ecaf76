"""The passive core loads no third-party package, and the lazy package namespaces still export
every name they did."""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys

import pytest

THIRD_PARTY = ("kazoo", "sqlalchemy", "alembic", "futurist", "yaml")
LAZY_PACKAGES = ("conductor.engine", "conductor.delegation", "persistence")


def _loaded_by(statement: str) -> list[str]:
    """Modules a fresh interpreter holds after running `statement`."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60)
    return list(json.loads(out.stdout))


def test_importing_the_passive_core_loads_no_third_party_package() -> None:
    loaded = _loaded_by("import conductor.engine.core")
    assert [m for m in loaded if m.split(".")[0] in THIRD_PARTY] == []
    assert "conductor.engine.runner" not in loaded and "persistence.sqlstore" not in loaded


def test_the_plain_records_load_no_sql() -> None:
    loaded = _loaded_by("import persistence.records")
    assert [m for m in loaded if m.split(".")[0] in THIRD_PARTY] == []


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_a_lazy_package_exports_every_name_it_lists(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(module._HOMES)
    for name in module.__all__:
        value = getattr(module, name)
        assert getattr(importlib.import_module(module._HOMES[name]), name) is value
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_the_delegation_errors_keep_the_names_saved_data_knows_them_by() -> None:
    from conductor.delegation import DelegationFailed, DelegationTimeout  # noqa: PLC0415
    from conductor.flow.retry import type_name  # noqa: PLC0415

    assert type_name(DelegationFailed) == "conductor.delegation.errors.DelegationFailed"
    assert type_name(DelegationTimeout) == "conductor.delegation.errors.DelegationTimeout"
    error = pickle.loads(pickle.dumps(DelegationTimeout("late")))
    assert type(error) is DelegationTimeout and str(error) == "late"
