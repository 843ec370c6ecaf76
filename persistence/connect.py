"""Engines from URLs: SQLite (the default, one machine) and PostgreSQL (production).

SQLite connections are set up for several processes sharing one file: WAL journal (readers never
block the writer), a busy timeout, foreign keys enforced (for ON DELETE CASCADE), and write
transactions that take the write lock up front (BEGIN IMMEDIATE) so two writers never deadlock on
a lock upgrade. PostgreSQL connections get a connect timeout and TCP keepalives so a vanished
server is noticed instead of waited on forever.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from persistence import jsonvalue

WRITE_OPTION = "zkc_write"
"""Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE)."""

_SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True)
class StoreOptions:
    """Tuning of a SQL store. Every field can be passed to `open_store` as a keyword."""

    retry_for: float = 30.0
    """Seconds a transient error (dropped connection, server restart, SQLite busy) is retried
    before StoreUnavailable is raised."""
    pool_size: int = 5
    """Connections kept open (PostgreSQL, SQLite files)."""
    max_overflow: int = 5
    """Extra connections opened under load beyond pool_size, closed when returned."""
    pool_timeout: float = 10.0
    """Seconds to wait for a free pooled connection (then a transient error, retried)."""
    pool_recycle: float = 1800.0
    """Seconds after which a pooled connection is replaced (outlives idle-killing proxies)."""
    pool_pre_ping: bool = False
    """Test each connection on checkout. Off by default: a dead connection fails its first
    statement, which is retried on a fresh one anyway; a ping would cost a round trip per write."""
    connect_timeout: float = 5.0
    """PostgreSQL: seconds to wait for a new connection."""
    keepalives_idle: int = 10
    """PostgreSQL: seconds of silence before TCP keepalive probes start (dead peer detection)."""
    idle_in_transaction_timeout: float = 5.0
    """PostgreSQL: seconds after which the server ends a session left idle inside a transaction
    (a writer paused mid-transaction by GC, SIGSTOP or a partition), releasing its row locks so
    the next owner is not blocked behind it. The store's own transactions never idle."""
    busy_timeout: float = 1.0
    """SQLite: seconds one statement waits on another process's lock before the retry loop
    (bounded by retry_for) takes over."""
    synchronous: str = "FULL"
    """SQLite: PRAGMA synchronous. FULL makes every commit durable across power loss; NORMAL
    (faster) may lose the last commits on power loss, never on a process crash."""

    def __post_init__(self) -> None:
        if self.synchronous.upper() not in _SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS_LEVELS)}, "
                f"not {self.synchronous!r}"
            )
        if self.retry_for < 0:
            raise ValueError(f"retry_for must be >= 0, not {self.retry_for!r}")

    @classmethod
    def from_keywords(cls, options: dict[str, Any]) -> StoreOptions:
        """Options from keywords, refusing unknown names with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown store option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**options)


_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)


def masked(url: str | URL) -> str:
    """The URL as text with its passwords hidden (the one after `user:` and the values of
    `password=` and `sslpassword=` in the query string), safe to log and to print in errors."""
    text = make_url(url).render_as_string(hide_password=True)
    place, query_sep, query = text.partition("?")
    return place + _QUERY_PASSWORD.sub(r"\1***", query_sep + query)


def create_store_engine(url: str | URL, options: StoreOptions | None = None) -> Engine:
    """An Engine for `url` set up as described in this module's docstring."""
    options = options or StoreOptions()
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    common: dict[str, Any] = {
        "json_serializer": _serialize_json,
        "pool_pre_ping": options.pool_pre_ping,
        "pool_recycle": options.pool_recycle,
    }
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ValueError(
                f"{masked(parsed)}: an in-memory SQLite database is private to one connection; "
                "use a file (sqlite:///path/to/conductor.db) or persistence.MemoryStore"
            )
        engine = create_engine(
            parsed,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            pool_timeout=options.pool_timeout,
            connect_args={"timeout": options.busy_timeout},
            **common,
        )
        _set_up_sqlite(engine, options)
        return engine
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if parsed.get_driver_name() == "psycopg":
            defaults = {
                "connect_timeout": max(1, round(options.connect_timeout)),
                "keepalives": 1,
                "keepalives_idle": options.keepalives_idle,
                "keepalives_interval": max(1, options.keepalives_idle // 2),
                "keepalives_count": 3,
                "application_name": "zkconductor",
                "options": "-c idle_in_transaction_session_timeout="
                f"{max(1, round(options.idle_in_transaction_timeout * 1000))}",
            }
            # Parameters given in the URL's query (?connect_timeout=...) win over these.
            connect_args = {k: v for k, v in defaults.items() if k not in parsed.query}
        return create_engine(
            parsed,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            pool_timeout=options.pool_timeout,
            connect_args=connect_args,
            **common,
        )
    raise ValueError(
        f"{masked(parsed)}: unsupported database; use sqlite:///path or "
        "postgresql+psycopg://user:password@host/dbname"
    )


def _set_up_sqlite(engine: Engine, options: StoreOptions) -> None:
    synchronous = options.synchronous.upper()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred and late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Switching to WAL needs exclusive access; it persists in the file, so only do it once
        # (a busy first switch is a transient error, retried by the caller).
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class PreEncoded(str):
    """JSON text already produced (and checked) by persistence.jsonvalue; stored as is."""

    __slots__ = ()


def _serialize_json(value: Any) -> str:
    if isinstance(value, PreEncoded):
        return value
    return jsonvalue.dumps(value, what="value")
