"""Writes whose connection drops before the reply (outcome unknown) are applied exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.connection import _CONNECTION_DROP

from jobboard.board import JobBoard
from jobboard.model import BoardEventKind, JobState
from tests.jobboard.conftest import EventLog


def drop_after_next(client: KazooClient, request_type: str) -> list[str]:
    """Drop the connection right after the next request of `request_type` is queued: it is
    sent, but its reply is lost (kazoo raises ConnectionLoss to the caller)."""
    dropped: list[str] = []
    original = client._call

    def call(request: Any, async_object: Any) -> Any:
        result = original(request, async_object)
        if type(request).__name__ == request_type and not dropped:
            dropped.append(request_type)
            client._queue.append((_CONNECTION_DROP, None))
            client._connection._write_sock.send(b"\0")
        return result

    client._call = call
    return dropped


@pytest.mark.parametrize("key", [None, "once"])
def test_post_is_not_duplicated(board: JobBoard, key: str | None) -> None:
    events = EventLog(board)
    dropped = drop_after_next(board.client, "Create" if key is None else "Transaction")
    job = board.post("n", "f", {"v": 1}, key=key)
    assert dropped
    events.wait_for(BoardEventKind.RECONNECTED)
    assert [j.id for j in board.jobs()] == [job.id]
    assert board.get(job.id).document == job.document


def test_claim_is_taken_once_and_recognized_as_ours(board: JobBoard) -> None:
    job = board.post("n", "f", {})
    board.watch()
    dropped = drop_after_next(board.client, "Transaction")
    claim = board.claim(job.id, "c")
    assert dropped
    current = board.get(job.id)
    assert current.state == JobState.CLAIMED and current.owner == claim.owner
    assert current.document is not None and current.document["attempts"] == 1
    assert current.epoch == claim.epoch
    board.complete(claim, {"state": "SUCCESS"})


def test_complete_is_applied_once(board: JobBoard) -> None:
    claim = board.claim(board.post("n", "f", {}).id, "c")
    dropped = drop_after_next(board.client, "Transaction")
    board.complete(claim, {"state": "SUCCESS"})
    assert dropped
    assert board.wait(claim.job_id, timeout=10).outcome == {"state": "SUCCESS"}


def test_park_and_operator_trash_are_applied_once(board: JobBoard) -> None:
    claim = board.claim(board.post("n", "f", {}).id, "c")
    dropped = drop_after_next(board.client, "Transaction")
    board.park(claim, until=123.0)
    assert dropped and board.get(claim.job_id).state == JobState.PARKED
    dropped = drop_after_next(board.client, "Transaction")
    board.trash(claim.job_id, "operator")
    assert dropped and board.get_trashed(claim.job_id).reason == "operator"
