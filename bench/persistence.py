"""Throughput of the fenced write path, beside the database's own ceiling.

One run prints `name: value` lines, for SQLite (a file, the store's default settings) and for
PostgreSQL (a fresh database on ZKC_BENCH_POSTGRES, default the local test server):

- <db>_raw_update_tx_per_s: the ceiling: one single-row UPDATE in its own transaction, through
  the bare driver connection (same connection settings as the store: WAL and synchronous=FULL on
  SQLite);
- <db>_save_1_atom_per_s: atom transitions through SqlStore.save (fence UPDATE + atom upsert,
  one transaction), and <db>_save_1_atom_vs_ceiling its ratio to the ceiling (target >= 0.5);
- <db>_save_2_atoms_per_s: the engine's usual batch (one task's SUCCESS + the next one's
  RUNNING) per second, and <db>_save_2_atoms_ms its latency.

Each figure is the median of REPEATS interleaved timed rounds.

    .venv/bin/python bench/persistence.py
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import make_url

# Run as a script, this file's directory comes first on sys.path and its name would shadow the
# persistence package: put the repository first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from persistence import AtomRecord, AtomState, SqlStore, migrate, open_store

REPEATS = 5
ROUND_SECONDS = 1.0
POSTGRES = os.environ.get(
    "ZKC_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def rate(operation: Callable[[int], None]) -> float:
    """Operations per second over one round of about ROUND_SECONDS."""
    done = 0
    start = time.perf_counter()
    deadline = start + ROUND_SECONDS
    while True:
        for _ in range(20):
            operation(done)
            done += 1
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def measure(store: SqlStore, prefix: str) -> None:
    record = store.create_execution(f"bench-{secrets.token_hex(4)}", "bench", "1", {"n": 1})
    store.take_over(record.id, 1, "bench")
    execution_id = record.id
    started = time.time()

    def save_one(i: int) -> None:
        store.save(execution_id, 1, [AtomRecord(
            f"task-{i % 100}", state=AtomState.RUNNING if i % 2 else AtomState.SUCCESS,
            attempt=1, result={"i": i} if i % 2 == 0 else None, started_at=started,
        )])

    def save_two(i: int) -> None:
        store.save(execution_id, 1, [
            AtomRecord(f"task-{i % 100}", state=AtomState.SUCCESS, attempt=1, result={"i": i},
                       started_at=started, finished_at=time.time()),
            AtomRecord(f"task-{(i + 1) % 100}", state=AtomState.RUNNING, attempt=1,
                       started_at=time.time()),
        ])

    raw = store.engine.raw_connection()  # same pool, same connection set-up as the store
    cursor = raw.cursor()
    sqlite = store.engine.dialect.name == "sqlite"
    placeholder = "?" if sqlite else "%s"
    update = f"UPDATE executions SET owner = {placeholder} WHERE id = {placeholder}"

    def raw_update(i: int) -> None:
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")  # what a store write transaction does
        cursor.execute(update, (f"bench-{i}", execution_id))
        raw.commit()

    rounds: dict[str, list[float]] = {"raw": [], "one": [], "two": []}
    try:
        for _ in range(REPEATS):
            rounds["raw"].append(rate(raw_update))
            rounds["one"].append(rate(save_one))
            rounds["two"].append(rate(save_two))
    finally:
        cursor.close()
        raw.close()
    ceiling = statistics.median(rounds["raw"])
    one = statistics.median(rounds["one"])
    two = statistics.median(rounds["two"])
    print(f"{prefix}_raw_update_tx_per_s: {ceiling:.0f}")
    print(f"{prefix}_save_1_atom_per_s: {one:.0f}")
    print(f"{prefix}_save_1_atom_vs_ceiling: {one / ceiling:.2f}")
    print(f"{prefix}_save_2_atoms_per_s: {two:.0f}")
    print(f"{prefix}_save_2_atoms_ms: {1000 / two:.3f}")
    print(f"{prefix}_save_1_atom_ms: {1000 / one:.3f}")


@contextmanager
def postgres_database() -> Iterator[str]:
    admin = make_url(POSTGRES).set(drivername="postgresql").render_as_string(False)
    name = f"zkc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    print(f"repeats: {REPEATS}")
    print(f"round_seconds: {ROUND_SECONDS}")
    with tempfile.TemporaryDirectory(prefix="zkc-bench-") as directory:
        url = f"sqlite:///{directory}/bench.db"
        migrate.upgrade(url)
        with open_store(url) as store:
            print(f"sqlite_synchronous: {store.options.synchronous}")
            measure(store, "sqlite")
    try:
        database = postgres_database()
        url = database.__enter__()
    except psycopg.Error as error:
        print(f"postgres: skipped ({error})")
        return 0
    try:
        migrate.upgrade(url)
        with open_store(url) as store:
            measure(store, "postgres")
    finally:
        database.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
