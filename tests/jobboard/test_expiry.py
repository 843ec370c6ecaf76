"""A claimer whose session expires: others take over fast, the stale holder changes nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from jobboard.board import JobBoard
from jobboard.errors import ClaimLost
from jobboard.model import BoardEventKind, Claim, JobState
from jobboard.testing.zkserver import ZooKeeperServers
from tests.jobboard.conftest import BoardFactory, ClaimerProcess, EventLog, expire_session

SESSION_TIMEOUT = 2.0


@pytest.mark.slow
def test_waiting_claimer_takes_over_within_session_timeout_plus_one_second(
    board: JobBoard, claimers: Callable[..., ClaimerProcess]
) -> None:
    job = board.post("n", "f", {})
    holder = claimers("frozen", session_timeout=SESSION_TIMEOUT)
    first = holder.call(op="claim", job=job.id)
    assert first["ok"], first
    board.watch()
    result: list[Claim | None] = []
    waiting = threading.Thread(target=lambda: result.append(board.claim_next("t", timeout=30)))
    waiting.start()
    os.kill(holder.pid, signal.SIGSTOP)  # a GC pause / partition: the session expires
    frozen_at = time.monotonic()
    waiting.join(30)
    took_over_after = time.monotonic() - frozen_at
    assert result and result[0] is not None and result[0].job_id == job.id
    assert took_over_after < SESSION_TIMEOUT + 1.0, took_over_after
    assert result[0].epoch > first["epoch"]

    os.kill(holder.pid, signal.SIGCONT)
    stale = holder.call(op="complete")
    assert stale["ok"] is False and stale["error"] == "ClaimLost", stale
    after = board.get(job.id)
    assert after.state == JobState.CLAIMED and after.owner is not None
    assert after.owner["id"] == "t", "the stale holder changed nothing"
    board.complete(result[0], {"state": "SUCCESS"})


def test_expired_claim_cannot_complete_or_release_and_changes_nothing(
    zk_server: ZooKeeperServers, make_board: BoardFactory
) -> None:
    holder, observer = make_board(session_timeout=4), make_board()
    events = EventLog(holder)
    job = holder.post("n", "f", {})
    claim = holder.claim(job.id, "h")
    lost = threading.Event()
    claim.add_listener(lambda c, kind: lost.set() if kind == "lost" else None)
    expire_session(zk_server.connect_string, holder.client)
    events.wait_for(BoardEventKind.LOST)
    events.wait_for(BoardEventKind.NEW_SESSION)
    assert lost.wait(10) and claim.lost.is_set()
    before = observer.get(job.id)
    with pytest.raises(ClaimLost, match="nothing was changed"):
        holder.complete(claim, {"state": "SUCCESS"})
    with pytest.raises(ClaimLost):
        holder.release(claim, {"crashes": 1})
    with pytest.raises(ClaimLost):
        holder.park(claim)
    after = observer.get(job.id)
    assert after == before and after.state == JobState.UNCLAIMED
    assert after.document is not None and "crashes" not in after.document


def test_stale_claim_under_the_same_owner_name_is_refused_even_if_not_yet_marked_lost(
    zk_server: ZooKeeperServers, make_board: BoardFactory
) -> None:
    """TaskFlow's failure: an expired owner consumed the job a new owner held under the same
    name. Identity here is the claim (session + token), never the name."""
    holder, other = make_board(session_timeout=4), make_board()
    job = holder.post("n", "f", {})
    claim = holder.claim(job.id, "conductor-1")
    old_session = claim.session
    expire_session(zk_server.connect_string, holder.client)
    taken = other.claim_next("conductor-1", timeout=20)
    assert taken is not None and taken.job_id == job.id
    assert taken.owner["id"] == claim.owner["id"] == "conductor-1"
    claim.lost.clear()  # pretend the holder never heard about it: the protocol must still refuse
    with pytest.raises(ClaimLost):
        holder.complete(claim, {"state": "SUCCESS"})
    assert holder.session_id != old_session
    assert other.get(job.id).owner == taken.owner
    other.complete(taken, {"state": "SUCCESS"})
    assert other.wait(job.id, timeout=5).outcome == {"state": "SUCCESS"}
