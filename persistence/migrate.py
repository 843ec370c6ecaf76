"""Schema migrations, driven from code: the Alembic scripts ship inside this package.

`upgrade(url)` brings a database to the current schema (the CLI's `conductor db upgrade`);
`check(url)` is what a conductor calls on start: it raises SchemaOutdated saying exactly what to
run. Concurrent upgrades are serialized by a lock (PostgreSQL advisory lock, SQLite write lock),
so several conductors upgrading at once apply each revision exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, text

from persistence.connect import WRITE_OPTION, StoreOptions, create_store_engine, masked
from persistence.errors import SchemaOutdated
from persistence.retry import Retrier
from persistence.schema import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_PG_MIGRATION_LOCK = 0x7A6B63  # "zkc": pg_advisory_xact_lock key of schema upgrades


def head() -> str:
    """The schema revision this code needs."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    if found is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return found


def current(url: str | URL, *, retry_for: float = 0.0) -> str | None:
    """The database's schema revision, or None for a database never upgraded.

    Raises StoreUnavailable if the database stays unreachable for `retry_for` seconds.
    """

    def read() -> str | None:
        with _connection(url, lock=False) as conn:
            return _current(conn)

    return Retrier(retry_for, where=masked(url)).run(read, what="read the schema revision")


def upgrade(url: str | URL, revision: str = "head", *, retry_for: float = 30.0) -> str | None:
    """Apply the migrations up to `revision` (default: the newest); returns the revision now
    current. Safe to run while other processes upgrade or use the database; transient errors
    are retried for `retry_for` seconds (the whole upgrade is one transaction)."""

    def apply() -> str | None:
        with _connection(url, lock=True) as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            return _current(conn)

    return Retrier(retry_for, where=masked(url)).run(apply, what="upgrade the schema")


def check(url: str | URL, *, retry_for: float = 0.0) -> None:
    """Raise SchemaOutdated, saying what to run, unless the schema is at this code's revision
    (StoreUnavailable if the database stays unreachable for `retry_for` seconds)."""
    needed = head()
    found = current(url, retry_for=retry_for)
    if found == needed:
        return
    if found is None:
        raise SchemaOutdated(
            f"database {masked(url)} has no zkconductor schema yet; "
            f"run: conductor db upgrade --db {masked(url)}"
        )
    if found in _known_revisions():
        raise SchemaOutdated(
            f"database {masked(url)} schema is at revision {found}, this version needs {needed}; "
            f"run: conductor db upgrade --db {masked(url)}"
        )
    raise SchemaOutdated(
        f"database {masked(url)} schema is at revision {found}, which this version of "
        f"zkconductor does not know (it needs {needed}): the database was upgraded by a newer "
        "version; upgrade this installation of zkconductor"
    )


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def _current(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@contextmanager
def _connection(url: str | URL, *, lock: bool) -> Iterator[Connection]:
    """A connection in a transaction; with `lock`, holding the schema-migration lock."""
    # Waits up to 30 s for running writers (SQLite) instead of failing a one-off command.
    engine = create_store_engine(url, StoreOptions(pool_size=1, max_overflow=0, busy_timeout=30.0))
    try:
        # SQLite: the write option makes the transaction BEGIN IMMEDIATE, the migration lock.
        conn = engine.connect().execution_options(**{WRITE_OPTION: lock})
        with conn, conn.begin():
            if lock and conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            yield conn
    finally:
        engine.dispose()
