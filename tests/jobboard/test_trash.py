"""Dead letters: garbage documents leave the board with the reason; trash, list, show, restore."""

from __future__ import annotations

import json
import threading

import pytest
from kazoo.client import KazooClient

from jobboard.board import JobBoard
from jobboard.errors import AlreadyClaimed, ClaimLost, InvalidInput, InvalidJob
from jobboard.model import JobState
from jobboard.protocol.naming import JobIdGenerator
from tests.fixtures.zookeeper import ZkClientFactory
from tests.jobboard.conftest import BoardFactory


def plant(client: KazooClient, board: JobBoard, data: bytes, priority: int = 9) -> str:
    """Write a job node with arbitrary bytes, as a buggy or hostile producer could."""
    job_id = JobIdGenerator().new_id(priority)
    client.create(board.paths.job(job_id), data)
    return job_id


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x80\x81garbage", "not UTF-8"),
        (b'{"schema": 7}', "unknown schema version 7"),
        (b'{"schema": 1, "id": "x"}', "missing field"),
        (b'{"schema": 1, "inputs": ' + b"[" * 200_000, "nested too deeply"),
    ],
)
def test_garbage_is_dead_lettered_and_never_blocks_other_jobs(
    make_board: BoardFactory, zk_client_factory: ZkClientFactory, data: bytes, reason: str
) -> None:
    board = make_board(stampede_width=1)
    bad = plant(zk_client_factory(), board, data, priority=9)  # best priority: tried first
    good = board.post("ok", "f", {}, priority=1)
    claim = board.claim_next("c", timeout=10)
    assert claim is not None and claim.job_id == good.id
    trashed = board.get_trashed(bad)
    assert trashed.state == JobState.TRASHED and reason in (trashed.reason or "")
    assert trashed.raw == data and trashed.document is None
    assert [j.id for j in board.trashed()] == [bad]
    assert board.get(bad).state == JobState.TRASHED


def test_reading_garbage_moves_it_too(
    board: JobBoard, zk_client_factory: ZkClientFactory
) -> None:
    bad = plant(zk_client_factory(), board, b"[]")
    good = board.post("ok", "f", {})
    assert [j.id for j in board.jobs()] == [good.id]
    assert board.get(bad).state == JobState.TRASHED
    with pytest.raises(InvalidJob):
        bad2 = plant(zk_client_factory(), board, b"nope")
        board.claim(bad2, "c")


def test_restore_puts_a_job_back_with_attempts_reset(board: JobBoard) -> None:
    job = board.post("n", "f", {"a": 1}, priority=4)
    claim = board.claim(job.id, "c")
    board.trash(job.id, "poison: crashed 3 conductors", claim=claim)
    entry = board.get_trashed(job.id)
    assert entry.reason == "poison: crashed 3 conductors"
    assert entry.document is not None and entry.document["attempts"] == 1
    restored = board.restore(job.id)
    assert restored.id == job.id and restored.document is not None
    assert restored.document["attempts"] == 0
    assert board.trashed() == []
    again = board.claim_next("c", timeout=10)
    assert again is not None and again.job_id == job.id


def test_restore_of_garbage_needs_a_fixed_document(
    board: JobBoard, zk_client_factory: ZkClientFactory
) -> None:
    bad = plant(zk_client_factory(), board, b'{"schema": 1}')
    board.jobs()
    with pytest.raises(InvalidInput, match="pass a fixed document"):
        board.restore(bad)
    fixed = json.loads(json.dumps(board.post("n", "f", {}).document))
    fixed["id"] = bad
    restored = board.restore(bad, document=fixed)
    assert restored.state == JobState.UNCLAIMED and board.get(bad).state == JobState.UNCLAIMED


def test_operator_trash_refuses_a_claimed_job_unless_forced(make_board: BoardFactory) -> None:
    conductor, operator = make_board(), make_board()
    job = operator.post("n", "f", {})
    claim = conductor.claim(job.id, "c")
    lost = threading.Event()
    claim.add_listener(lambda c, kind: lost.set() if kind == "lost" else None)
    with pytest.raises(AlreadyClaimed):
        operator.trash(job.id, "stop it")
    assert operator.get(job.id).state == JobState.CLAIMED
    operator.trash(job.id, "stop it", force=True)
    assert lost.wait(10) and claim.lost.is_set()
    with pytest.raises(ClaimLost):
        conductor.complete(claim, {"state": "SUCCESS"})
    assert operator.get(job.id).state == JobState.TRASHED


@pytest.mark.parametrize("operation", ["complete", "release", "park", "trash"])
def test_a_holder_whose_claim_was_force_trashed_cannot_touch_the_next_claim(
    make_board: BoardFactory, operation: str
) -> None:
    """Forced trash, restore, a new claim: the job node is new, so its version starts again and
    the new claim carries the old one's job version. The old holder must still be refused, even
    before its board hears that its claim ended (the race the hold marker closes)."""
    old_holder, operator, new_holder = make_board(), make_board(), make_board()
    job = operator.post("n", "f", {})
    stale = old_holder.claim(job.id, "conductor-1")
    operator.trash(job.id, "stop it", force=True)
    assert stale.lost.wait(10)
    operator.restore(job.id)
    fresh = new_holder.claim(job.id, "conductor-1")
    assert fresh.version == stale.version  # what a version check alone could not tell apart
    stale.lost.clear()  # pretend the old holder never heard: the protocol itself must refuse
    calls = {
        "complete": lambda: old_holder.complete(stale, {"state": "SUCCESS"}),
        "release": lambda: old_holder.release(stale),
        "park": lambda: old_holder.park(stale),
        "trash": lambda: old_holder.trash(job.id, "stale", claim=stale),
    }
    with pytest.raises(ClaimLost):
        calls[operation]()
    seen = operator.get(job.id)
    assert seen.state == JobState.CLAIMED and seen.owner == fresh.owner
    assert operator.parked() == [] and operator.trashed() == []
    new_holder.complete(fresh, {"state": "SUCCESS"})
    assert operator.wait(job.id, timeout=5).outcome == {"state": "SUCCESS"}


def test_operator_trash_of_a_parked_job(board: JobBoard) -> None:
    claim = board.claim(board.post("n", "f", {}).id, "c")
    board.park(claim)
    board.trash(claim.job_id, "abandoned")
    assert board.parked() == []
    assert board.get_trashed(claim.job_id).reason == "abandoned"
    board.restore(claim.job_id)
    assert board.get(claim.job_id).state == JobState.UNCLAIMED
