"""Opening a store from a URL: the one entry point the conductor and the CLI use.

There is no default URL here: where a conductor keeps its executions is a setting of the
conductor (`conductor.config`), which passes it in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL

from persistence import migrate
from persistence.connect import StoreOptions, create_store_engine
from persistence.sqlstore import SqlStore


def open_store(url: str | URL, *, check_schema: bool = True, **options: Any) -> SqlStore:
    """A SqlStore on `url` (`sqlite:///path` or `postgresql+psycopg://user:pw@host/db`).

    `options` are StoreOptions fields (retry_for, pool_size, max_overflow, pool_timeout,
    pool_recycle, pool_pre_ping, connect_timeout, keepalives_idle, busy_timeout, synchronous);
    an unknown one is a TypeError. With `check_schema` (the default), raises SchemaOutdated
    saying what to run if the database's schema is not the one this code needs, and
    StoreUnavailable if the database stays unreachable for `retry_for` seconds.
    """
    settings = StoreOptions.from_keywords(options)
    if check_schema:
        migrate.check(url, retry_for=settings.retry_for)
    return SqlStore(create_store_engine(url, settings), settings)
