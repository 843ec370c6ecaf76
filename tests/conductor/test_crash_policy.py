"""The poison-pill rule itself (conductor.daemon.crashes.CrashPolicy) on a real board, with the
in-memory store: what counts, what resets the count, and who is proven alive."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from conductor import jobfields
from conductor.daemon.crashes import CrashPolicy
from jobboard.board import JobBoard
from persistence import MemoryStore
from persistence.records import AtomRecord, AtomState, ExecutionRecord


@pytest.fixture
def board(zk_hosts: str, zk_root: str) -> Iterator[JobBoard]:
    with JobBoard.connect(zk_hosts, zk_root) as made:
        yield made


def claimed(board: JobBoard, times: int) -> tuple[str, int, dict[str, object]]:
    """A job claimed `times` times, the last claim held: (job, epoch, document)."""
    job = board.post("p", "f", {}).id
    for _ in range(times - 1):
        board.release(board.claim(job, "owner"))
    claim = board.claim(job, "owner")
    return job, claim.epoch, dict(claim.document)


def owned_by(store: MemoryStore, job: str, owners: list[tuple[int, str]]) -> ExecutionRecord:
    execution = None
    for epoch, owner in owners:
        execution = store.open_execution(job, "f", "1", {}, epoch=epoch, owner=owner)
    assert execution is not None
    return execution


def test_owners_that_died_condemn_the_job_at_the_threshold(board: JobBoard) -> None:
    store = MemoryStore()
    policy = CrashPolicy(board, store, max_crashes=2)
    job, epoch, document = claimed(board, 3)  # two owners before this one, none settled
    assert policy.crashes(document) == 2 and policy.at_threshold(document)
    execution = owned_by(store, job, [(1, "gone@h:1"), (2, "gone@h:2")])
    verdict = policy.judge(job, epoch, document, execution)
    assert verdict.poison is not None and "2 owners in a row died" in verdict.poison
    assert policy.judge(job, epoch, document, None).poison is not None, "no execution opened"
    settled = {**document, jobfields.SETTLED_ATTEMPTS: 1}
    assert policy.judge(job, epoch, settled, execution).poison is None, "below the threshold"


def test_progress_since_the_last_count_resets_it(board: JobBoard) -> None:
    store = MemoryStore()
    policy = CrashPolicy(board, store, max_crashes=2)
    job, epoch, document = claimed(board, 3)
    execution = owned_by(store, job, [(1, "gone@h:1")])
    done = dataclasses.replace(execution, atoms={"a": AtomRecord("a", state=AtomState.SUCCESS)})
    verdict = policy.judge(job, epoch, document, done)
    assert verdict.progress == 1 and verdict.poison is None
    counted = {**document, jobfields.PROGRESS: 1}
    assert policy.judge(job, epoch, counted, done).poison is not None, "no progress since"


def test_an_earlier_owner_alive_now_did_not_crash(board: JobBoard) -> None:
    store = MemoryStore()
    policy = CrashPolicy(board, store, max_crashes=2)
    job, epoch, document = claimed(board, 3)
    board.register("conductors", "alive")
    member = next(m for m in board.members("conductors") if m["id"] == "alive")
    identity = f"alive@{member['host']}:{member['pid']}"
    execution = owned_by(store, job, [(1, "gone@h:1"), (2, identity)])
    verdict = policy.judge(job, epoch, document, execution)
    assert verdict.poison is None, "the newest earlier owner lives: no crash counted"
    assert verdict.document[jobfields.SETTLED_ATTEMPTS] == 2
    stored = board.get(job).document
    assert stored is not None and stored[jobfields.SETTLED_ATTEMPTS] == 2, "recorded on the job"
