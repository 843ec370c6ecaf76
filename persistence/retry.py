"""Retrying transient database errors for a bounded time, then giving up with StoreUnavailable.

Transient means "the same transaction may well succeed if tried again soon": a dropped or refused
connection, a PostgreSQL server shutting down or restarting, a serialization failure or deadlock,
too many connections, SQLite busy/locked. Everything else (constraint violations, SQL errors, and
the store's own Fenced, UnknownExecution...) is a bug or an answer, never retried.

A transaction whose COMMIT died with the connection may or may not have been applied; the store's
writes are written to be safe to apply twice, so retrying them is correct either way.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from persistence.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

_PG_TRANSIENT_CLASSES = ("08", "53")  # connection exception, insufficient resources
_PG_TRANSIENT_STATES = frozenset(
    {
        "57P01",  # admin_shutdown (pg_terminate_backend, fast shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, recovery)
        "57014",  # query_canceled (statement timeout, pg_cancel_backend)
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "25006",  # read_only_sql_transaction (a failover left us on a standby)
        "25P03",  # idle_in_transaction_session_timeout (we were paused mid-transaction)
    }
)
_SQLITE_TRANSIENT_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_SQLITE_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy")


def is_transient(error: BaseException) -> bool:
    """Whether `error` (as raised by SQLAlchemy) is worth retrying the transaction for."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection free in time
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    if isinstance(original, sqlite3.OperationalError):
        code = getattr(original, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE_TRANSIENT_CODES:
            return True
        return any(text in str(original) for text in _SQLITE_TRANSIENT_MESSAGES)
    sqlstate: str | None = getattr(original, "sqlstate", None)
    if sqlstate is None:
        # psycopg raises OperationalError without a SQLSTATE for client-side connection
        # failures: refused, reset, closed unexpectedly, timed out.
        return isinstance(error, sa_exc.OperationalError)
    return sqlstate.startswith(_PG_TRANSIENT_CLASSES) or sqlstate in _PG_TRANSIENT_STATES


class Retrier:
    """Runs a unit of work again on transient errors, with exponential backoff and jitter.

    The total time spent (work plus waits) is bounded by `retry_for`; past it the last error is
    raised as StoreUnavailable, which callers treat as "release the job and retry later".
    """

    def __init__(
        self,
        retry_for: float,
        *,
        where: str,
        first_delay: float = 0.02,
        max_delay: float = 2.0,
    ) -> None:
        self.retry_for = retry_for
        self.where = where
        self.first_delay = first_delay
        self.max_delay = max_delay

    def run(self, work: Callable[[], T], *, what: str) -> T:
        """Return work()'s result, retrying it on transient errors within the budget."""
        deadline = time.monotonic() + self.retry_for
        delay = self.first_delay
        attempts = 0
        while True:
            attempts += 1
            try:
                return work()
            except (sa_exc.DBAPIError, sa_exc.TimeoutError) as error:
                if not is_transient(error):
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailable(
                        f"{what}: database {self.where} unavailable for {self.retry_for:g}s "
                        f"({attempts} attempts); last error: {_summary(error)}"
                    ) from error
                # "Equal jitter": at least half the delay, so waits really grow.
                pause = min(delay / 2 + random.uniform(0, delay / 2), remaining)
                log.warning(
                    "%s: transient database error (attempt %d), retrying in %.3fs: %s",
                    what, attempts, pause, _summary(error),
                )
                time.sleep(pause)
                delay = min(delay * 2, self.max_delay)


def _summary(error: BaseException) -> str:
    """One line about the error, without SQL parameters (which may hold job data)."""
    original = getattr(error, "orig", None) or error
    first_line = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {first_line}"
