"""What the conductor benchmarks share: databases, a backlog of demo jobs, conductor processes,
outcomes read back, and `name: value` output.

Import it first in a bench script: it drops bench/ from sys.path, where bench/persistence.py
would otherwise shadow the `persistence` package (`python bench/x.py` puts bench/ first).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_REPO = os.path.dirname(_HERE)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import psycopg  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from conductor.testing import ConductorProcess, wait_until  # noqa: E402
from jobboard.board import JobBoard  # noqa: E402
from jobboard.protocol.documents import encode_job, new_job_document  # noqa: E402
from jobboard.protocol.naming import JobIdGenerator  # noqa: E402
from persistence import migrate  # noqa: E402

POSTGRES_ADMIN = os.environ.get("ZKC_BENCH_POSTGRES",
                                "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def show(name: str, value: float | int | str, reference: str = "") -> None:
    """Print one `name: value` line, with the reference (target, peer figure) beside it."""
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}" + (f"  ({reference})" if reference else ""), flush=True)


def sqlite_url(directory: Path) -> str:
    """A new SQLite file in `directory`, migrated to the current schema."""
    url = f"sqlite:///{directory / f'bench-{secrets.token_hex(4)}.db'}"
    migrate.upgrade(url)
    return url


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (migrated), dropped afterwards. The URL keeps its password
    (the conductors need it): pass it to ConductorProcess, which hands it over in the
    environment, and print it only through mask_url."""
    name = f"zkc_bench_{secrets.token_hex(5)}"
    with psycopg.connect(_libpq(POSTGRES_ADMIN), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(_libpq(POSTGRES_ADMIN), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def kazoo(hosts: str) -> Iterator[KazooClient]:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def ensure_board(client: KazooClient, root: str) -> None:
    for area in ("jobs", "claims", "holds", "parked", "trash", "outcomes", "keys", "sessions"):
        client.ensure_path(f"{root}/{area}")


def post_steps(client: KazooClient, root: str, count: int, *, steps: int, seconds: float,
               ledger: Path) -> list[str]:
    """Put `count` demo.steps jobs on the board with pipelined creates (setup, not measured);
    the documents are exactly what `JobBoard.post` writes."""
    ensure_board(client, root)
    ids = JobIdGenerator()
    inputs = {"steps": steps, "seconds": seconds, "ledger": str(ledger)}
    posted: list[str] = []
    for batch in range(0, count, 2000):
        pending = []
        for _ in range(min(2000, count - batch)):
            job_id = ids.new_id(0)
            document = new_job_document(job_id, name="bench", flow="demo.steps", inputs=inputs,
                                        priority=0, key=None)
            pending.append(client.create_async(f"{root}/jobs/{job_id}", encode_job(document)))
            posted.append(job_id)
        for result in pending:
            result.get()
    return posted


def pending_jobs(client: KazooClient, root: str) -> int:
    """Jobs still on the board (one stat, whatever the backlog)."""
    stat = client.exists(f"{root}/jobs")
    return int(stat.numChildren) if stat is not None else 0


def read_outcomes(client: KazooClient, root: str) -> dict[str, dict[str, Any]]:
    """Every outcome entry under root (pipelined reads)."""
    names = client.get_children(f"{root}/outcomes")
    replies = [(name, client.get_async(f"{root}/outcomes/{name}")) for name in names]
    return {name: json.loads(reply.get()[0]) for name, reply in replies}


class Fleet:
    """Conductor processes on one board and one database; all stopped (by PID) on exit. The
    database URL (with its password: see postgres_url) reaches them in CONDUCTOR_DB, not in
    their command lines (ConductorProcess)."""

    def __init__(self, zk: str, root: str, db: str, log_dir: Path) -> None:
        self.zk, self.root, self.db, self.log_dir = zk, root, db, log_dir
        self.processes: list[ConductorProcess] = []

    def start(self, name: str, board: JobBoard, *, wait: bool = True,
              **options: Any) -> ConductorProcess:
        process = ConductorProcess(name, zk=self.zk, root=self.root, db=self.db,
                                   log_dir=self.log_dir, **options).start()
        self.processes.append(process)
        if wait:
            process.wait_registered(board, timeout=60)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.alive:
                process.resume()
                process.terminate(timeout=30)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_drained(client: KazooClient, root: str, timeout: float) -> None:
    """Until no job is left on the board (checked by one stat every 50 ms: an outside observer
    of a finite run, not part of the measured path)."""
    wait_until(lambda: pending_jobs(client, root) == 0, timeout, "the board to drain",
               interval=0.05)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def now() -> float:
    return time.time()
