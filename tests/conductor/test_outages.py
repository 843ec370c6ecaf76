"""Outages of the database and of ZooKeeper: the job is given back or paused, never lost or
dead-lettered, and no task starts while the conductor cannot prove it still owns the job."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from conductor.ledger import read_ledger
from conductor.testing import ConductorProcess, wait_until
from jobboard.board import JobBoard
from jobboard.model import JobState
from jobboard.zkserver import ZooKeeperServers
from persistence import AtomState, open_store
from tests.conductor.conftest import Cluster

DEADLINE = 60.0


def _sqlite_path(url: str) -> str:
    return url[len("sqlite:///"):]


@pytest.mark.slow
def test_a_database_outage_gives_the_job_back_and_it_completes_once_the_database_returns(
        cluster: Cluster) -> None:
    conductor = cluster.conductor("a", extra_args=(
        "--db-retry-for", "0.5", "--release-backoff", "0.2"))
    locker = sqlite3.connect(_sqlite_path(cluster.db), isolation_level=None, timeout=10)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: writes time out
    try:
        job = cluster.post_steps(2, 0.0)
        wait_until(lambda: "database unavailable" in conductor.log_tail(200), DEADLINE,
                   "the conductor to give the job back")
        wait_until(lambda: conductor.log_tail(400).count("database unavailable") >= 2, DEADLINE,
                   "a second try after the backoff, with nothing else changing on the board")
        job_now = cluster.board.get(job)
        assert job_now.state in (JobState.UNCLAIMED, JobState.CLAIMED)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS", outcome
    assert Counter(e["task"] for e in cluster.entries(job)) == {"step-1": 1, "step-2": 1}


@pytest.mark.slow
def test_while_zookeeper_is_down_no_task_starts_and_the_job_finishes_after_it_returns(
        zk_isolated_server: ZooKeeperServers, zk_root: str, migrated_sqlite_url: str,
        tmp_path: Path) -> None:
    server = zk_isolated_server
    ledger = tmp_path / "ledger.jsonl"
    board = JobBoard.connect(server.connect_string, zk_root, session_timeout=30)
    conductor = ConductorProcess("a", zk=server.connect_string, root=zk_root,
                                 db=migrated_sqlite_url, session_timeout=20, log_dir=tmp_path)
    try:
        conductor.start().wait_registered(board.client)
        job = board.post("j", "demo.steps", {"steps": 3, "seconds": 0.5,
                                             "ledger": str(ledger)}).id
        wait_until(lambda: any(e["task"] == "step-1" for e in read_ledger(ledger)), DEADLINE,
                   "step-1 to start")
        server.kill(0)
        wait_until(lambda: "suspended" in conductor.log_tail(100), DEADLINE,
                   "the conductor to notice the outage")
        with open_store(migrated_sqlite_url) as store:
            # step-1 finishes (and is saved) during the outage; step-2 must wait for ZooKeeper.
            def step1_saved() -> bool:
                execution = store.find_by_job(job)
                return bool(execution and execution.atoms["step-1"].state is AtomState.SUCCESS)
            wait_until(step1_saved, DEADLINE, "step-1 saved SUCCESS during the outage")
        assert [e["task"] for e in read_ledger(ledger)] == ["step-1"], "nothing starts while down"
        restarted = time.time()
        server.restart(0)
        outcome = board.wait(job, DEADLINE)
        assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS"
        entries = read_ledger(ledger)
        assert Counter(e["task"] for e in entries) == {"step-1": 1, "step-2": 1, "step-3": 1}
        step2 = next(e for e in entries if e["task"] == "step-2")
        assert step2["t"] >= restarted
        assert "session lost" not in conductor.log_tail(400), "the session survived the outage"
    finally:
        conductor.stop()
        board.close()
