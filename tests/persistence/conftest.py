"""Stores for the persistence tests: every contract test runs on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from persistence import ExecutionStore, MemoryStore, SqlStore, open_store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[ExecutionStore]:
    """An empty store of each kind (SQL ones on a fresh, migrated database)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    url: str = request.getfixturevalue(fixture)
    sql = open_store(url, retry_for=5.0)
    try:
        yield sql
    finally:
        sql.close()


@pytest.fixture
def sql_store(migrated_database_url: str) -> Iterator[SqlStore]:
    """An empty SQL store on SQLite and on PostgreSQL."""
    sql = open_store(migrated_database_url, retry_for=5.0)
    try:
        yield sql
    finally:
        sql.close()
