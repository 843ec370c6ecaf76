"""Shared test configuration.

Fixtures that several test packages use live in tests/fixtures/ as pytest plugins:
- tests/fixtures/zookeeper.py: real ZooKeeper servers (standalone and 3-server ensembles);
- tests/fixtures/databases.py: SQLite files and fresh PostgreSQL databases.
Package-specific fixtures live in each tests/<package>/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conductor.engine.transitions import Transition, watch

pytest_plugins = ["tests.fixtures.zookeeper", "tests.fixtures.databases"]


@pytest.fixture(autouse=True)
def _only_legal_transitions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every state change the engine makes in this process during a test is in the tables of
    conductor.engine.transitions, even one whose IllegalTransition was caught and logged
    (except in tests marked illegal_transitions, which try forbidden ones on purpose)."""
    illegal: list[Transition] = []
    with watch(lambda seen: None if seen.legal else illegal.append(seen)):
        yield
    if request.node.get_closest_marker("illegal_transitions") is None:
        assert not illegal, f"the engine made transitions its tables forbid: {illegal}"
