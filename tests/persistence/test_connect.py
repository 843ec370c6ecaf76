"""Engines from URLs: SQLite set up for several processes, PostgreSQL connection settings, and
clear refusals of URLs and options that cannot work."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import make_url, text

from persistence import StoreOptions, open_store
from persistence.connect import WRITE_OPTION, create_store_engine, masked


def test_sqlite_connections_use_wal_foreign_keys_busy_timeout_and_full_sync(
    migrated_sqlite_url: str,
) -> None:
    with open_store(migrated_sqlite_url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1000
    with open_store(migrated_sqlite_url, synchronous="normal", busy_timeout=0.25) as store, \
            store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250


def test_sqlite_write_transactions_take_the_write_lock_at_begin(migrated_sqlite_url: str) -> None:
    path = make_url(migrated_sqlite_url).database or ""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with open_store(migrated_sqlite_url) as store:
            writer = store.engine.execution_options(**{WRITE_OPTION: True})
            with writer.begin(), pytest.raises(sqlite3.OperationalError, match="is locked"):
                other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # free again after COMMIT
            other.execute("ROLLBACK")
            with store.engine.begin() as conn:  # a read transaction locks nothing
                conn.execute(text("SELECT count(*) FROM executions"))
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.postgres
def test_postgres_connection_settings(migrated_postgres_url: str) -> None:
    with open_store(migrated_postgres_url, idle_in_transaction_timeout=2.5) as store, \
            store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW application_name").scalar() == "zkconductor"
        assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "2500ms"
    own = make_url(migrated_postgres_url).update_query_dict({"application_name": "mine"})
    with open_store(own) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW application_name").scalar() == "mine"  # URL wins


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_with_the_alternatives(url: str) -> None:
    with pytest.raises(ValueError, match="private to one connection; use a file"):
        create_store_engine(url)


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/db: unsupported database"):
        create_store_engine("mysql://u:pw@h/db")


def test_unknown_and_invalid_options_are_refused(sqlite_url: str) -> None:
    with pytest.raises(TypeError, match=r"unknown store option.*retry_four.*known: .*retry_for"):
        open_store(sqlite_url, check_schema=False, retry_four=3)
    with pytest.raises(ValueError, match="synchronous must be one of"):
        StoreOptions(synchronous="sometimes")
    with pytest.raises(ValueError, match="retry_for must be >= 0"):
        StoreOptions(retry_for=-1)


def test_masked_hides_only_the_password() -> None:
    assert masked("postgresql+psycopg://zk:secret@db:5432/zkc") == (
        "postgresql+psycopg://zk:***@db:5432/zkc"
    )
    assert masked("sqlite:////var/lib/zkc/conductor.db") == "sqlite:////var/lib/zkc/conductor.db"


def test_masked_hides_query_string_passwords() -> None:
    assert masked("postgresql+psycopg://zk@db/zkc?password=s3cret&sslmode=require") == (
        "postgresql+psycopg://zk@db/zkc?password=***&sslmode=require"
    )
    shown = masked("postgresql+psycopg://zk:pw@db/zkc?sslpassword=k3y&password=s3cret")
    assert shown == "postgresql+psycopg://zk:***@db/zkc?password=***&sslpassword=***"
    with pytest.raises(ValueError) as error:
        create_store_engine("mysql://u@h/db?password=s3cret")
    assert "s3cret" not in str(error.value) and "password=***" in str(error.value)
