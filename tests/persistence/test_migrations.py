"""The shipped Alembic migrations: they build exactly the models' schema on SQLite and
PostgreSQL, upgrades are idempotent and safe to run concurrently, and a conductor starting on an
outdated schema is told exactly what to run."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, text

from persistence import SchemaOutdated, migrate, open_store
from persistence.schema import VERSION_TABLE, metadata


def test_upgrade_builds_the_schema_and_is_idempotent(database_url: str) -> None:
    assert migrate.current(database_url) is None
    assert migrate.upgrade(database_url) == migrate.head()
    assert migrate.upgrade(database_url) == migrate.head()  # nothing left to do
    assert migrate.current(database_url) == migrate.head()
    engine = create_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == {"executions", "atoms", "ownerships", "delegations", VERSION_TABLE}


def test_migrations_produce_exactly_the_models_schema(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_check_passes_on_a_current_schema(migrated_database_url: str) -> None:
    migrate.check(migrated_database_url)
    open_store(migrated_database_url).close()


def test_check_on_an_empty_database_says_what_to_run_with_the_password_hidden(
    database_url: str,
) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="s3cret")  # trust auth: any password is accepted
    with pytest.raises(SchemaOutdated) as raised:
        migrate.check(url)
    message = str(raised.value)
    shown = url.render_as_string(hide_password=True)
    assert message.endswith(f"run: conductor db upgrade --db {shown}")
    assert "s3cret" not in message
    with pytest.raises(SchemaOutdated, match="conductor db upgrade"):
        open_store(url)
    open_store(url, check_schema=False).close()  # for tools that know what they do


def test_check_on_a_schema_from_a_newer_version(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'from-the-future'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdated, match="upgraded by a newer version; upgrade this"):
        migrate.check(migrated_database_url)


def test_concurrent_upgrades_apply_the_migrations_once(database_url: str) -> None:
    start = threading.Barrier(3)
    results: list[object] = []

    def upgrade() -> None:
        start.wait()
        try:
            results.append(migrate.upgrade(database_url))
        except Exception as error:  # reported below
            results.append(error)

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [migrate.head()] * 3
