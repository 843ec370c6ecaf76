"""Transient database failures are retried within the budget, then StoreUnavailable; nothing is
ever half-written, and a commit whose outcome was lost is retried safely."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, exc, make_url, text

from persistence import (
    AtomRecord,
    AtomState,
    ExecutionChange,
    ExecutionState,
    NewDelegation,
    SqlStore,
    StoreUnavailable,
    open_store,
)
from persistence.retry import Retrier, is_transient
from tests.fixtures.databases import libpq_url
from tests.persistence.tcpproxy import FaultyProxy


class RetryWatcher(logging.Handler):
    """Counts the store's "retrying" warnings; `retried` is set at the first one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retried = threading.Event()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.retried.set()


@pytest.fixture
def retries() -> Iterator[RetryWatcher]:
    watcher = RetryWatcher()
    logger = logging.getLogger("persistence.retry")
    logger.addHandler(watcher)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)


def started(store: SqlStore, job_id: str = "job-1", epoch: int = 5) -> str:
    record = store.create_execution(job_id, "flow", "1", {})
    store.take_over(record.id, epoch, "alpha")
    return record.id


def atom(i: int) -> AtomRecord:
    return AtomRecord(f"t{i}", state=AtomState.SUCCESS, attempt=1, result={"i": i})


# -- PostgreSQL: connections killed with pg_terminate_backend ---------------------------------


@pytest.mark.postgres
def test_postgres_connections_killed_mid_transaction_are_retried_and_nothing_is_lost(
    migrated_postgres_url: str, postgres_admin_url: str, retries: RetryWatcher
) -> None:
    store = open_store(migrated_postgres_url, retry_for=30.0, pool_size=2)
    admin = psycopg.connect(libpq_url(postgres_admin_url), autocommit=True)
    kills = {"due": False, "done": 0}

    @event.listens_for(store.engine, "after_cursor_execute")
    def kill_own_backend(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # After the atom rows are written, before COMMIT: the backend dies with them.
        if kills["due"] and statement.startswith("INSERT INTO atoms"):
            kills["due"] = False
            pid = conn.connection.dbapi_connection.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])  # waits for it
            kills["done"] += 1

    try:
        execution_id = started(store)
        for i in range(30):
            kills["due"] = i % 3 == 0
            store.save(execution_id, 5, [atom(i)],
                       ExecutionChange(ExecutionState.SUCCESS, {"n": i}) if i == 29 else None)
        assert kills["done"] == 10 and retries.count >= 10

        # Every pooled connection killed while idle: the next calls get fresh ones.
        admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [make_url(migrated_postgres_url).database],
        )
        record = store.load(execution_id)
        assert {name: a.result for name, a in record.atoms.items()} == {
            f"t{i}": {"i": i} for i in range(30)
        }
        assert record.state is ExecutionState.SUCCESS and record.result == {"n": 29}
        assert [(o.epoch, o.owner) for o in store.owners(execution_id)] == [(5, "alpha")]
    finally:
        admin.close()
        store.close()


# -- PostgreSQL behind a faulty proxy: outages and lost commit acknowledgements ---------------


@pytest.fixture
def proxy(migrated_postgres_url: str) -> Iterator[tuple[FaultyProxy, str]]:
    """A proxy in front of the test database, and the (unencrypted) URL through it."""
    url = make_url(migrated_postgres_url)
    with FaultyProxy((url.host or "127.0.0.1", url.port or 5432)) as faulty:
        proxied = url.set(host="127.0.0.1", port=faulty.port).update_query_dict(
            {"sslmode": "disable"}
        )
        yield faulty, proxied.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_an_outage_shorter_than_the_budget_is_ridden_out(
    proxy: tuple[FaultyProxy, str], retries: RetryWatcher
) -> None:
    faulty, url = proxy
    with open_store(url, retry_for=60.0) as store:
        execution_id = started(store)
        faulty.outage()  # server restart: connections cut, new ones refused
        outcome: list[object] = []
        saver = threading.Thread(
            target=lambda: outcome.append(store.save(execution_id, 5, [atom(1)]))
        )
        saver.start()
        assert retries.retried.wait(30), "the store did not retry during the outage"
        faulty.restore()
        saver.join(60)
        assert outcome == [None]
        assert store.load(execution_id).atoms["t1"].result == {"i": 1}


@pytest.mark.postgres
def test_an_outage_past_the_budget_raises_store_unavailable_then_recovers(
    proxy: tuple[FaultyProxy, str], retries: RetryWatcher
) -> None:
    faulty, url = proxy
    with open_store(url, retry_for=0.5) as store:
        execution_id = started(store)
        faulty.outage()
        with pytest.raises(StoreUnavailable) as raised:
            store.save(execution_id, 5, [atom(1)])
        message = str(raised.value)
        assert f"save execution {execution_id}" in message
        assert "unavailable for 0.5s" in message and "attempts" in message
        assert retries.count >= 1
        faulty.restore()
        assert store.load(execution_id).atoms == {}  # nothing half-written
        store.save(execution_id, 5, [atom(2)])
        assert set(store.load(execution_id).atoms) == {"t2"}


@pytest.mark.postgres
def test_a_lost_commit_reply_is_retried_safely(proxy: tuple[FaultyProxy, str]) -> None:
    """The COMMIT reached the server and succeeded; the client never heard it. Each write,
    retried, must see its own effect as success: no error, no duplicate."""
    faulty, url = proxy
    with open_store(url, retry_for=30.0) as store:
        faulty.lose_next_commit_reply()
        record = store.create_execution("job-1", "flow", "1", {"n": 1})
        assert faulty.commit_lost.is_set()
        assert store.create_execution("job-1", "flow", "1", {}).id == record.id

        faulty.lose_next_commit_reply()
        taken = store.take_over(record.id, 5, "alpha")
        assert faulty.commit_lost.is_set() and (taken.epoch, taken.owner) == (5, "alpha")
        assert [(o.epoch, o.owner) for o in store.owners(record.id)] == [(5, "alpha")]

        faulty.lose_next_commit_reply()
        store.save(record.id, 5, [AtomRecord("ship", state=AtomState.DELEGATED, attempt=1)],
                   delegations=[NewDelegation("ship", 1, "hash-1")])
        assert faulty.commit_lost.is_set()
        assert [d.token_hash for d in store.delegations(record.id)] == ["hash-1"]

        faulty.lose_next_commit_reply()
        done = store.complete_delegation("hash-1", {"result": "shipped"})
        assert faulty.commit_lost.is_set() and done.outcome == {"result": "shipped"}
        assert store.delegation("hash-1").outcome == {"result": "shipped"}


@pytest.mark.postgres
def test_an_unreachable_server_is_store_unavailable_with_the_password_hidden() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{port}/nowhere"
    store = open_store(url, check_schema=False, retry_for=0.3)
    with store, pytest.raises(StoreUnavailable) as raised:
        store.find_by_job("job-1")
    assert "s3cret" not in str(raised.value) and "postgres:***@" in str(raised.value)
    with pytest.raises(StoreUnavailable, match="read the schema revision"):
        open_store(url, retry_for=0.3)  # a conductor starting during an outage


# -- SQLite held locked by another process ----------------------------------------------------

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
sys.stdin.readline()
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("released", flush=True)
"""


@pytest.fixture
def sqlite_locker(migrated_sqlite_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process that takes the SQLite write lock at `lock()` and holds it until
    `release()`."""
    path = make_url(migrated_sqlite_url).database or ""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def lock(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "locked\n"


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "released\n"


def test_sqlite_busy_is_retried_until_the_other_process_lets_go(
    migrated_sqlite_url: str, sqlite_locker: subprocess.Popen[str], retries: RetryWatcher
) -> None:
    with open_store(migrated_sqlite_url, retry_for=60.0, busy_timeout=0.05) as store:
        execution_id = started(store)
        lock(sqlite_locker)
        outcome: list[object] = []
        saver = threading.Thread(
            target=lambda: outcome.append(store.save(execution_id, 5, [atom(1)]))
        )
        saver.start()
        assert retries.retried.wait(30), "the store did not retry while the database was locked"
        assert outcome == []
        release(sqlite_locker)
        saver.join(60)
        assert outcome == [None]
        assert store.load(execution_id).atoms["t1"].result == {"i": 1}


def test_sqlite_locked_past_the_budget_is_store_unavailable_and_writes_nothing(
    migrated_sqlite_url: str, sqlite_locker: subprocess.Popen[str]
) -> None:
    with open_store(migrated_sqlite_url, retry_for=0.3, busy_timeout=0.05) as store:
        execution_id = started(store)
        lock(sqlite_locker)
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.save(execution_id, 5, [atom(1)], ExecutionChange(ExecutionState.SUCCESS))
        assert store.load(execution_id).atoms == {}  # reads go on during the lock (WAL)
        release(sqlite_locker)
        record = store.load(execution_id)
        assert record.atoms == {} and record.state is ExecutionState.PENDING


# -- what is not retried ----------------------------------------------------------------------


def test_errors_that_are_bugs_are_raised_at_once_not_retried(
    migrated_sqlite_url: str, retries: RetryWatcher
) -> None:
    with open_store(migrated_sqlite_url, retry_for=60.0) as store:
        execution_id = started(store)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE atoms"))
        with pytest.raises(exc.OperationalError, match="no such table: atoms"):
            store.save(execution_id, 5, [atom(1)])
    assert retries.count == 0


def test_transient_classification() -> None:
    def wrapped(error: Exception, invalidated: bool = False) -> exc.DBAPIError:
        base = sqlite3.Error if isinstance(error, sqlite3.Error) else psycopg.Error
        return exc.DBAPIError.instance("SQL", {}, error, base, connection_invalidated=invalidated)

    locked = sqlite3.OperationalError("database is locked")
    assert is_transient(wrapped(locked))
    assert not is_transient(wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not is_transient(wrapped(sqlite3.OperationalError("no such table: atoms")))
    assert is_transient(wrapped(sqlite3.OperationalError("whatever"), invalidated=True))
    assert is_transient(wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    assert is_transient(wrapped(psycopg.errors.SerializationFailure("could not serialize")))
    assert is_transient(wrapped(psycopg.OperationalError("connection refused")))
    assert not is_transient(wrapped(psycopg.errors.UniqueViolation("duplicate key")))
    assert not is_transient(wrapped(psycopg.errors.UndefinedTable("no such relation")))
    assert not is_transient(ValueError("not a database error"))


def test_the_retrier_gives_up_at_the_budget_and_passes_other_errors_through() -> None:
    attempts = {"n": 0}

    def always_locked() -> None:
        attempts["n"] += 1
        raise exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(StoreUnavailable, match=r"attempts.*database is locked"):
        Retrier(0.2, where="sqlite:///x.db", first_delay=0.01).run(always_locked, what="work")
    assert attempts["n"] >= 2

    def broken() -> None:
        attempts["n"] = -1
        raise exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE"))

    with pytest.raises(exc.IntegrityError):
        Retrier(60.0, where="sqlite:///x.db").run(broken, what="work")
    assert attempts["n"] == -1
