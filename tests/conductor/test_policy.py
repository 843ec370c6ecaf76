"""The poison-pill rule against owners that live on.

An owner that lost its claim (its session expired) but runs on did not crash. It records that
on the job once it notices (tests/conductor/test_outages.py); these tests take the case where
that record has not arrived (yet) when the next owner counts: the next owner checks whether the
earlier owner is present right now, as the same process, before dead-lettering the job.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from kazoo.client import KazooClient

from conductor.daemon import crashes
from conductor.testing import wait_until
from jobboard.board import JobBoard
from jobboard.model import JobState
from persistence import open_store
from tests.conductor.conftest import SESSION_TIMEOUT, Cluster

DEADLINE = 60.0


def _lose_claim_silently(cluster: Cluster, old: JobBoard, job: str) -> None:
    """`old` (this process, registered as conductor "old") claims the job, takes over its
    execution, then loses the claim to a session expiry without recording anything, like an
    owner whose note is still on its way."""
    claim = old.claim(job, "old")
    with open_store(cluster.db) as store:
        store.open_execution(job, "demo.steps", "1", claim.document["inputs"],
                             epoch=claim.epoch, owner=f"old@{socket.gethostname()}:{os.getpid()}")
    member = f"{cluster.root}/conductors/old"
    expired = old.session_id
    session_id, password = old.client.client_id
    thief = KazooClient(hosts=cluster.zk, client_id=(session_id, password))
    thief.start(timeout=30)
    thief.stop()
    thief.close()
    wait_until(claim.lost.is_set, DEADLINE, "the old owner's claim to be lost")

    def registered_again() -> bool:
        stat = cluster.board.client.exists(member)
        return stat is not None and stat.ephemeralOwner not in (expired, None)

    wait_until(registered_again, DEADLINE, "the old owner's presence in its new session")
    job_now = cluster.board.get(job)
    assert job_now.state is JobState.UNCLAIMED and job_now.document is not None
    assert job_now.document["attempts"] == 1 and "settled_attempts" not in job_now.document


@pytest.mark.parametrize("old_lives_on", [True, False])
def test_the_next_owner_checks_that_an_earlier_owner_is_really_gone(
        cluster: Cluster, old_lives_on: bool) -> None:
    old = JobBoard.connect(cluster.zk, cluster.root, session_timeout=4 * SESSION_TIMEOUT)
    try:
        old.register("conductors", "old")
        job = cluster.post_steps(1, 0.0)
        _lose_claim_silently(cluster, old, job)
        if not old_lives_on:
            old.unregister("conductors", "old")  # as if it had died
        # One unsettled earlier claim is the limit with --max-crashes 1.
        cluster.conductor("next", extra_args=("--max-crashes", "1"))
        outcome = cluster.board.wait(job, DEADLINE)
    finally:
        old.close()
    if old_lives_on:
        assert outcome.state is JobState.COMPLETED, outcome
        assert outcome.outcome is not None and outcome.outcome["state"] == "SUCCESS"
        assert outcome.document is not None and outcome.document["settled_attempts"] == 1
        assert [e["task"] for e in cluster.entries(job)] == ["step-1"]
    else:
        assert outcome.state is JobState.TRASHED, outcome
        assert outcome.reason is not None and "1 owners in a row died" in outcome.reason
        assert not cluster.entries(job)


def test_a_late_note_of_a_lost_claim_never_lowers_a_newer_one(cluster: Cluster) -> None:
    board = cluster.board
    job = cluster.post_steps(1, 0.0)
    for _ in range(3):
        board.release(board.claim(job, "t"))
    until = time.monotonic() + DEADLINE

    def settled() -> object:
        return (board.get(job).document or {}).get("settled_attempts")

    assert crashes.settle(board, job, 2, until=until) and settled() == 2
    board.update(job, {"settled_attempts": 3})  # a newer owner's clean end
    assert crashes.settle(board, job, 2, until=until) and settled() == 3, "never lowered"
    holder = board.claim(job, "t")  # attempt 4, held while the note of attempt 3 comes in
    assert crashes.settle(board, job, 3, until=until) and settled() == 3
    assert not crashes.settle(board, job, 5, until=until), "not an attempt of this job yet"
    board.release(holder, {"settled_attempts": 4})
    assert settled() == 4
    board.trash(job, "test")
    assert not crashes.settle(board, job, 4, until=until), "the job left the board"
