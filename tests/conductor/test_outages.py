"""Outages of the database and of ZooKeeper: the job is given back or paused, never lost or
dead-lettered, and no task starts while the conductor cannot prove it still owns the job."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from conductor.ledger import read_ledger
from conductor.testing import ConditionTimeout, ConductorProcess, wait_until
from jobboard.board import JobBoard
from jobboard.model import JobState
from jobboard.testing.zkserver import ZooKeeperServers
from persistence import AtomState, open_store
from tests.conductor.conftest import Cluster, pids_of

DEADLINE = 60.0

SESSION_SPY = """\
\"\"\"Loaded as a flows file: writes this process's ZooKeeper session (id, password) to the
file named by $SESSION_SPY whenever it connects, so that a test can expire the session from
outside, as an outage or a partition longer than the session timeout would.\"\"\"
import json, os
from kazoo.client import KazooClient, KazooState

_init = KazooClient.__init__


def _publish(client):
    session_id, password = client.client_id
    path = os.environ["SESSION_SPY"]
    with open(path + ".tmp", "w") as out:
        json.dump({"session": session_id, "password": password.hex()}, out)
    os.replace(path + ".tmp", path)


def _spying_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.add_listener(lambda state: _publish(self) if state == KazooState.CONNECTED else None)


KazooClient.__init__ = _spying_init
"""


def _spied_conductor(cluster: Cluster, name: str, **options: object) -> ConductorProcess:
    """A conductor (demo flows) whose session `_expire` can end."""
    spy = cluster.dir / "session_spy.py"
    if not spy.exists():
        spy.write_text(SESSION_SPY)
    return cluster.conductor(name, flows=("conductor.demo", str(spy)),
                             env={"SESSION_SPY": str(cluster.dir / f"{name}.session")},
                             **options)  # type: ignore[arg-type]


def _expire(cluster: Cluster, process: ConductorProcess) -> int:
    """Expire the conductor's ZooKeeper session while it runs on: another client takes the
    session over and closes it. Retried until the server has ended it (the conductor's presence
    node is gone or of a new session). Returns the expired session id."""
    published = json.loads((cluster.dir / f"{process.name}.session").read_text())
    session, password = published["session"], bytes.fromhex(published["password"])
    member = f"{cluster.root}/conductors/{process.name}"

    def ended() -> bool:
        stat = cluster.board.client.exists(member)
        return stat is None or stat.ephemeralOwner != session

    for _ in range(5):
        thief = KazooClient(hosts=cluster.zk, client_id=(session, password))
        thief.start(timeout=30)
        thief.stop()
        thief.close()
        try:
            wait_until(ended, 5.0, f"the session of {process.name} to end")
            return int(session)
        except ConditionTimeout:
            continue  # the conductor reattached its session before the thief closed it
    raise AssertionError(f"could not expire the session of {process.name}")


def _logged_at(line: str) -> float:
    """The time of a conductor log line ("2024-01-02 03:04:05,678 LEVEL [name] ...")."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _log_lines(process: ConductorProcess, text: str) -> list[str]:
    return [line for line in process.log_path.read_text(errors="replace").splitlines()
            if text in line]


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
        conductor.start().wait_registered(board)
        # Steps of 2 s: the conductor must see the outage (a dead socket: at once, but under
        # load maybe not within a short step) before step-1 ends. Until it does, its session
        # lease may still prove the session alive, and starting step-2 then would be safe.
        job = board.post("j", "demo.steps", {"steps": 3, "seconds": 2.0,
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


@pytest.mark.slow
def test_on_lost_a_conductor_abandons_its_run_at_once_and_starts_no_task(
        cluster: Cluster) -> None:
    first = _spied_conductor(cluster, "first", max_jobs=1)
    job = cluster.post_steps(3, 2.0)
    wait_until(lambda: cluster.entries(job), DEADLINE, "the first conductor to start the job")
    # Waiting for the first conductor's only slot once it has lost the job: a better job, so
    # that it does not claim this one again (another conductor must resume it).
    blocker = cluster.post_steps(1, 60.0, name="blocker", priority=10)
    in_flight = wait_until(
        lambda: next((e for e in cluster.entries(job) if e["task"] == "step-2"), None),
        DEADLINE, "step-2 to start (step-1's success saved)")
    _expire(cluster, first)  # no other conductor yet: nothing fences the first one off

    def abandoned_and_nothing_started() -> list[str]:
        late = [e for e in cluster.entries(job) if e["task"] not in ("step-1", "step-2")]
        assert not late, f"the first conductor started tasks after losing its session: {late}"
        return _log_lines(first, "claim lost")

    abandoned = wait_until(abandoned_and_nothing_started, DEADLINE,
                           "the first conductor to abandon the job")
    lost = _log_lines(first, "ZooKeeper session lost")
    assert lost, first.log_tail(100)
    lost_at, abandoned_at = _logged_at(lost[0]), _logged_at(abandoned[0])
    assert job in abandoned[0], abandoned
    # At once: well before the task in flight (2 s) ends, not when its result comes back.
    assert abandoned_at - lost_at < 1.0, (lost, abandoned)
    assert abandoned_at < in_flight["t"] + 2.0, (in_flight, abandoned)
    # The lost claim was no crash: the first conductor says so on the job.
    wait_until(lambda: (cluster.board.get(job).document or {}).get("settled_attempts") == 1,
               DEADLINE, "the lost attempt to be recorded as settled")
    wait_until(lambda: cluster.entries(blocker), DEADLINE, "the first conductor to go on")
    second = cluster.conductor("second", max_jobs=1)
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS", outcome
    entries = sorted(cluster.entries(job), key=lambda e: e["t"])
    late = [e for e in entries if e["pid"] == first.pid and e["t"] >= lost_at]
    assert not late, f"tasks started after the session was lost: {late}"
    assert pids_of(entries) == [first.pid, second.pid], entries
    # step-1's saved success never runs again; step-2 was in flight: it runs again.
    assert Counter(e["task"] for e in entries) == {"step-1": 1, "step-2": 2, "step-3": 1}
    assert [e["task"] for e in entries if e["pid"] == first.pid] == ["step-1", "step-2"]


@pytest.mark.slow
def test_owners_whose_sessions_expire_are_no_crashes_and_the_job_is_never_dead_lettered(
        cluster: Cluster) -> None:
    """Owners that lose the job to session expiries (outages, partitions) but live on, more
    than --max-crashes times in a row with no task succeeding: the job is not a poison pill."""
    options = {"max_jobs": 1, "extra_args": ("--max-crashes", "2")}
    conductors = {p.pid: p for p in (_spied_conductor(cluster, "a", **options),
                                      _spied_conductor(cluster, "b", **options))}
    job = cluster.post_steps(1, 5.0)  # one long task: it never succeeds while owners lose it
    expiries = 4  # max_crashes + 2

    def started(n: int) -> list[dict[str, Any]]:
        found = cluster.board.get(job)
        assert found.state is not JobState.TRASHED, f"dead-lettered: {found.reason}"
        entries = cluster.entries(job)
        return entries if len(entries) >= n else []

    for n in range(1, expiries + 1):
        starts = wait_until(lambda n=n: started(n), DEADLINE, f"owner {n} to start the task")
        owner = conductors[max(starts, key=lambda e: e["t"])["pid"]]
        _expire(cluster, owner)
    outcome = cluster.board.wait(job, DEADLINE)
    assert outcome.state is JobState.COMPLETED, outcome
    assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS", outcome
    assert len(cluster.entries(job)) == expiries + 1
    assert all(p.alive for p in conductors.values())
    with open_store(cluster.db) as store:
        execution = store.find_by_job(job)
        assert execution is not None and execution.atoms["step-1"].state is AtomState.SUCCESS
