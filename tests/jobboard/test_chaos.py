"""A 3-server ensemble loses its leader (SIGKILL) while clients post and claim."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from jobboard.board import JobBoard
from jobboard.model import JobState
from jobboard.testing.zkserver import ZooKeeperServers
from tests.jobboard.conftest import BoardFactory, wait_until

JOBS = 150
KILL_AFTER = 40


@pytest.mark.chaos
@pytest.mark.slow
def test_leader_loss_loses_no_job_and_claims_none_twice(
    zk_ensemble: ZooKeeperServers, make_board: BoardFactory
) -> None:
    hosts = zk_ensemble.connect_string
    producer = make_board(hosts=hosts, session_timeout=15)
    workers = [make_board(hosts=hosts, session_timeout=15) for _ in range(2)]
    posted: dict[str, str] = {}
    completed: list[tuple[str, str, int]] = []
    claimed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    posting_done = threading.Event()
    enough_posted = threading.Event()
    killed = threading.Event()  # the producer holds its remaining posts until the leader is dead
    posted_at: list[float] = []
    claimed_at: list[float] = []

    def produce() -> None:
        try:
            for i in range(JOBS):
                job = producer.post("chaos", "f", {"i": i}, priority=i % 4, key=f"chaos-{i}")
                with lock:
                    posted[f"chaos-{i}"] = job.id
                    posted_at.append(time.monotonic())
                if i == KILL_AFTER:
                    enough_posted.set()
                    assert killed.wait(60)
        except BaseException as error:
            errors.append(error)
        finally:
            enough_posted.set()
            posting_done.set()

    def work(board: JobBoard, owner: str) -> None:
        try:
            while True:
                claim = board.claim_next(owner, timeout=3)
                if claim is None:
                    if posting_done.is_set():
                        return
                    continue
                with lock:
                    claimed.append(claim.job_id)
                    claimed_at.append(time.monotonic())
                board.complete(claim, {"state": "SUCCESS", "by": owner})
                with lock:
                    completed.append((claim.job_id, owner, claim.epoch))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=produce)] + [
        threading.Thread(target=work, args=(board, f"w{n}")) for n, board in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    assert enough_posted.wait(60)
    leader = zk_ensemble.leader()
    assert leader is not None
    zk_ensemble.kill(leader)
    killed_at = time.monotonic()
    killed.set()
    wait_until(lambda: zk_ensemble.leader() is not None, timeout=60, what="a new leader")
    assert zk_ensemble.leader() != leader
    for thread in threads:
        thread.join(180)
        assert not thread.is_alive()
    assert errors == []
    # The chaos really overlapped the work: most posts and claims came after the kill.
    assert sum(at > killed_at for at in posted_at) == JOBS - KILL_AFTER - 1
    assert sum(at > killed_at for at in claimed_at) >= JOBS - KILL_AFTER - 1

    # Every key made exactly one job; every job completed exactly once.
    assert len(posted) == JOBS and len(set(posted.values())) == JOBS
    runs = Counter(job_id for job_id, _, _ in completed)
    assert set(runs) == set(posted.values())
    assert set(runs.values()) == {1}, "a job was completed twice"
    assert set(Counter(claimed).values()) == {1}, "a job was claimed twice"
    assert producer.jobs() == []
    for job_id in posted.values():
        outcome = producer.wait(job_id, timeout=30)
        assert outcome.state == JobState.COMPLETED
