"""Fixtures for delegation tests: a real ZooKeeper, real SQLite/PostgreSQL, conductors in this
process (for flows whose tasks the test controls) and in child processes (conductor.testing).

`rig` runs on SQLite; `pg_rig` on a fresh PostgreSQL database; `any_rig` on both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conductor.daemon import Conductor
from conductor.delegation import Callbacks
from conductor.engine.dispatch import LocalDispatcher
from conductor.ledger import read_ledger
from conductor.registry import Registry
from conductor.testing import ConductorProcess, wait_until
from jobboard.board import JobBoard
from jobboard.model import JobState, Outcome
from jobboard.testing.nodes import wait_for_node
from jobboard.testing.zkserver import ZooKeeperServers
from persistence import SqlStore, open_store

DEADLINE = 60.0
SESSION_TIMEOUT = 1.0


@dataclass
class Running:
    """A conductor running in this process (its own board session and store)."""

    conductor: Conductor
    board: JobBoard
    store: SqlStore
    thread: threading.Thread
    dispatcher: LocalDispatcher

    def stop(self) -> None:
        self.conductor.stop(grace=5)
        self.thread.join(30)
        self.dispatcher.shutdown(wait=False)
        self.board.close()
        self.store.close()


@dataclass
class Rig:
    """One board root and one database; conductors in-process or as processes."""

    zk: str
    root: str
    db: str
    dir: Path
    board: JobBoard
    store: SqlStore
    running: list[Running] = field(default_factory=list)
    processes: list[ConductorProcess] = field(default_factory=list)

    @property
    def ledger(self) -> Path:
        return self.dir / "ledger.jsonl"

    def callbacks(self) -> Callbacks:
        return Callbacks(self.store, self.board)

    def conductor(self, name: str, registry: Registry | None = None, *,
                  callback_url: str | None = None, max_jobs: int = 4) -> Running:
        """A conductor in this process (demo flows unless `registry` is given)."""
        board = JobBoard.connect(self.zk, self.root, session_timeout=SESSION_TIMEOUT)
        store = open_store(self.db)
        dispatcher = LocalDispatcher(max_workers=16)
        conductor = Conductor(name, board, store, registry or Registry.from_specs(
            ["conductor.demo"]), dispatcher, max_jobs=max_jobs, callback_url=callback_url)
        thread = threading.Thread(target=conductor.serve, name=f"conductor-{name}", daemon=True)
        thread.start()
        running = Running(conductor, board, store, thread, dispatcher)
        self.running.append(running)
        wait_for_node(self.board.client, f"{self.root}/conductors/{name}", DEADLINE)
        return running

    def process(self, name: str, **options: Any) -> ConductorProcess:
        """A `conductor run` child process (demo flows unless told otherwise)."""
        options.setdefault("session_timeout", SESSION_TIMEOUT)
        process = ConductorProcess(name, zk=self.zk, root=self.root, db=self.db,
                                   log_dir=self.dir, **options).start()
        self.processes.append(process)
        process.wait_registered(self.board)
        return process

    def post_approval(self, **inputs: Any) -> str:
        return self.board.post("approval", "demo.approval",
                               {"ledger": str(self.ledger), **inputs}).id

    def entries(self, job: str, task: str = "request") -> list[dict[str, Any]]:
        return [e for e in read_ledger(self.ledger) if e["job"] == job and e["task"] == task]

    def token(self, job: str, attempt: int = 1) -> str:
        """The token the job's `request` task published for `attempt` (waits for it)."""
        found = wait_until(
            lambda: [e for e in self.entries(job) if e.get("attempt") == attempt],
            DEADLINE, f"job {job} to publish its attempt-{attempt} token")
        return str(found[-1]["token"])

    def wait_parked(self, job: str) -> None:
        wait_for_node(self.board.client, f"{self.root}/parked/{job}", DEADLINE)

    def wait_state(self, job: str, state: JobState) -> None:
        wait_until(lambda: self.board.get(job).state is state, DEADLINE,
                   f"job {job} to be {state.value}")

    def outcome(self, job: str) -> Outcome:
        return self.board.wait(job, DEADLINE)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(80)}" for p in self.processes)


def make_rig(zk_server: ZooKeeperServers, zk_root: str, db: str, tmp_path: Path
             ) -> Iterator[Rig]:
    board = JobBoard.connect(zk_server.connect_string, zk_root, session_timeout=10.0)
    store = open_store(db)
    rig = Rig(zk_server.connect_string, zk_root, db, tmp_path, board, store)
    try:
        yield rig
    finally:
        for process in rig.processes:
            process.stop()
        for running in rig.running:
            running.stop()
        store.close()
        board.close()


@pytest.fixture
def rig(zk_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str,
        tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(zk_server, zk_root, migrated_sqlite_url, tmp_path)


@pytest.fixture
def pg_rig(zk_server: ZooKeeperServers, zk_root: str, migrated_postgres_url: str,
           tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(zk_server, zk_root, migrated_postgres_url, tmp_path)


@pytest.fixture
def any_rig(zk_server: ZooKeeperServers, zk_root: str, migrated_database_url: str,
            tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(zk_server, zk_root, migrated_database_url, tmp_path)


def gate() -> tuple[threading.Event, Callable[[], None]]:
    """An event a task waits on (with a deadline) and the function that opens it."""
    event = threading.Event()
    return event, event.set
