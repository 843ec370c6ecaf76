"""Fixtures for conductor tests: real `conductor run` processes on a real ZooKeeper and SQLite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conductor.ledger import read_ledger
from conductor.testing import ConductorProcess
from jobboard.board import JobBoard
from jobboard.testing.zkserver import ZooKeeperServers

SESSION_TIMEOUT = 1.0
"""Conductor session timeout in these tests (the shared server's tickTime is 500 ms, so a dead
conductor's claims vanish within 1 to 1.5 s)."""


@dataclass
class Cluster:
    """Conductor processes on one board root and one database; all stopped at teardown."""

    zk: str
    root: str
    db: str
    dir: Path
    board: JobBoard
    processes: list[ConductorProcess] = field(default_factory=list)

    @property
    def ledger(self) -> Path:
        return self.dir / "ledger.jsonl"

    def conductor(self, name: str, *, wait: bool = True, **options: Any) -> ConductorProcess:
        """Start a conductor (demo flows, 1 s sessions unless told otherwise) and wait until it
        has registered its presence."""
        options.setdefault("session_timeout", SESSION_TIMEOUT)
        process = ConductorProcess(name, zk=self.zk, root=self.root, db=self.db,
                                   log_dir=self.dir, **options).start()
        self.processes.append(process)
        if wait:
            process.wait_registered(self.board)
        return process

    def post_steps(self, steps: int, seconds: float, **post: Any) -> str:
        inputs = {"steps": steps, "seconds": seconds, "ledger": str(self.ledger)}
        return self.board.post(post.pop("name", "steps"), "demo.steps", inputs, **post).id

    def entries(self, job: str | None = None) -> list[dict[str, Any]]:
        return [e for e in read_ledger(self.ledger) if job is None or e["job"] == job]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.process.pid if p.process else '-'})\n"
                         f"{p.log_tail(60)}" for p in self.processes)


@pytest.fixture
def cluster(zk_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str,
            tmp_path: Path) -> Iterator[Cluster]:
    board = JobBoard.connect(zk_server.connect_string, zk_root, session_timeout=10.0)
    made = Cluster(zk_server.connect_string, zk_root, migrated_sqlite_url, tmp_path, board)
    try:
        yield made
    finally:
        for process in made.processes:
            process.stop()
        board.close()


def pids_of(entries: list[dict[str, Any]]) -> list[int]:
    """The sequence of distinct pids in ledger order (a change = a new owner)."""
    order: list[int] = []
    for entry in sorted(entries, key=lambda e: e["t"]):
        if not order or order[-1] != entry["pid"]:
            order.append(entry["pid"])
    return order


def env_without_config() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
