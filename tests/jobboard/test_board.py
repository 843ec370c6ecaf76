"""Job board lifecycle on a real ZooKeeper: post, order, claim, release, complete, park, wake."""

from __future__ import annotations

import threading
import time

import pytest

from jobboard.board import JobBoard
from jobboard.errors import (
    AlreadyClaimed,
    ClaimLost,
    InvalidInput,
    JobNotFound,
    WaitTimeout,
)
from jobboard.model import Claim, JobState
from tests.jobboard.conftest import BoardFactory


def test_post_then_get_and_list(board: JobBoard) -> None:
    job = board.post("resize", "images.resize", {"size": 3, "names": ["a"]}, priority=4)
    assert job.state == JobState.UNCLAIMED
    got = board.get(job.id)
    assert got.state == JobState.UNCLAIMED
    assert got.document == job.document
    assert got.document is not None
    assert got.document["schema"] == 1 and got.document["attempts"] == 0
    assert [j.id for j in board.jobs()] == [job.id]


def test_backlog_order_is_priority_first_then_fifo(make_board: BoardFactory) -> None:
    board = make_board(stampede_width=1)
    posted = [board.post(f"j{i}", "f", {}, priority=p) for i, p in enumerate([1, 5, 1, 9, 5, 0])]
    expected = [posted[i].id for i in (3, 1, 4, 0, 2, 5)]
    assert [j.id for j in board.jobs()] == expected
    claimed_order = []
    while (claim := board.claim_next("c1", timeout=0)) is not None:
        claimed_order.append(claim.job_id)
        board.complete(claim, {"state": "SUCCESS"})
    assert claimed_order == expected


def test_claimers_spread_over_the_first_jobs_of_the_best_band(make_board: BoardFactory) -> None:
    board = make_board(stampede_width=4)
    low = [board.post("low", "f", {}, priority=1).id for _ in range(3)]
    high = [board.post("high", "f", {}, priority=2).id for _ in range(6)]
    picks = set()
    for _ in range(6):
        claim = board.claim_next("c", timeout=0)
        assert claim is not None
        assert claim.job_id in high, "priority always comes first"
        picks.add(high.index(claim.job_id))
        board.release(claim)
        view = board.watcher.view
        with view.condition:  # the release reached the view: all 6 are candidates again
            while not view.is_claimable(claim.job_id):
                assert view.condition.wait(10)
    assert picks <= {0, 1, 2, 3}, "only among the first 4 of the band"
    drained = []
    while (claim := board.claim_next("c", timeout=0)) is not None:
        drained.append(claim.job_id)
        board.complete(claim, {})
    assert set(drained[:6]) == set(high) and set(drained[6:]) == set(low)


def test_bad_posts_are_refused_and_create_nothing(board: JobBoard) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        board.post("n", "f", {}, priority=-3)
    with pytest.raises(InvalidInput, match="flow name"):
        board.post("n", "a/b", {})
    with pytest.raises(InvalidInput, match=r"inputs\['when'\]"):
        board.post("n", "f", {"when": time})  # a module is not JSON
    with pytest.raises(InvalidInput, match="limit is"):
        board.post("n", "f", {"blob": "x" * 300_000})
    assert board.jobs() == []


def test_idempotency_key_returns_the_first_job_wherever_it_is(board: JobBoard) -> None:
    first = board.post("n", "f", {"v": 1}, key="order-17")
    again = board.post("n", "f", {"v": 2}, key="order-17")
    assert again.id == first.id and again.document == first.document
    claim = board.claim(first.id, "c1")
    assert board.post("n", "f", {}, key="order-17").state == JobState.CLAIMED
    board.complete(claim, {"state": "SUCCESS"})
    finished = board.post("n", "f", {}, key="order-17")
    assert finished.id == first.id and finished.state == JobState.COMPLETED
    assert len(board.jobs()) == 0


def test_claim_carries_epoch_session_and_owner(board: JobBoard) -> None:
    job = board.post("n", "f", {})
    claim = board.claim(job.id, "conductor-1")
    assert claim.session == board.session_id
    assert claim.owner["id"] == "conductor-1" and claim.document["attempts"] == 1
    listed = board.get(job.id)
    assert listed.state == JobState.CLAIMED
    assert listed.owner is not None and listed.owner["id"] == "conductor-1"
    assert listed.epoch == claim.epoch and listed.since is not None
    with pytest.raises(AlreadyClaimed, match="conductor-1") as info:
        board.claim(job.id, "conductor-2")
    assert info.value.owner["id"] == "conductor-1"
    board.release(claim)
    second = board.claim(job.id, "conductor-2")
    assert second.epoch > claim.epoch, "the fencing epoch only grows"
    assert second.document["attempts"] == 2


def test_release_merges_updates_and_wakes_a_waiting_claimer(make_board: BoardFactory) -> None:
    holder, waiter = make_board(), make_board()
    job = holder.post("n", "f", {})
    claim = holder.claim(job.id, "holder")
    waiter.watch()
    result: list[Claim | None] = []
    thread = threading.Thread(target=lambda: result.append(waiter.claim_next("w", timeout=20)))
    thread.start()
    holder.release(claim, {"crashes": 1})
    thread.join(30)
    assert result and result[0] is not None and result[0].job_id == job.id
    assert result[0].document["crashes"] == 1 and result[0].document["attempts"] == 2


def test_complete_stores_the_outcome_and_wait_returns_it(make_board: BoardFactory) -> None:
    producer, conductor = make_board(), make_board()
    job = producer.post("n", "f", {"x": 1})
    outcomes = []
    waiting = threading.Thread(target=lambda: outcomes.append(producer.wait(job.id, timeout=30)))
    waiting.start()
    claim = conductor.claim_next("c", timeout=10)
    assert claim is not None
    conductor.complete(claim, {"state": "SUCCESS", "result": {"y": 2}})
    waiting.join(30)
    (outcome,) = outcomes
    assert outcome.state == JobState.COMPLETED
    assert outcome.outcome == {"state": "SUCCESS", "result": {"y": 2}}
    assert outcome.document is not None and outcome.document["inputs"] == {"x": 1}
    assert producer.get(job.id).state == JobState.COMPLETED
    with pytest.raises(ClaimLost):
        conductor.complete(claim, {"state": "SUCCESS"})


def test_wait_times_out_and_knows_unknown_jobs(board: JobBoard) -> None:
    job = board.post("n", "f", {})
    started = time.monotonic()
    with pytest.raises(WaitTimeout):
        board.wait(job.id, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(JobNotFound):
        board.wait("job-999-0000000000000-00000000", timeout=1)


def test_huge_outcome_is_stored_as_a_truncation_marker(board: JobBoard) -> None:
    claim = board.claim(board.post("n", "f", {}).id, "c")
    board.complete(claim, {"state": "SUCCESS", "result": "x" * 200_000})
    outcome = board.wait(claim.job_id, timeout=5).outcome
    assert outcome is not None and outcome["truncated"] is True and outcome["state"] == "SUCCESS"


def test_park_and_wake(make_board: BoardFactory) -> None:
    board, other = make_board(), make_board()
    job = board.post("n", "f", {}, priority=3)
    claim = board.claim(job.id, "c")
    until = time.time() + 3600
    board.park(claim, until=until, updates={"delegated": ["t1"]})
    parked = board.get(job.id)
    assert parked.state == JobState.PARKED and parked.until == until
    assert [j.id for j in board.parked()] == [job.id]
    assert other.claim_next("o", timeout=0.2) is None, "a parked job is not claimable"
    with pytest.raises(JobNotFound):
        other.claim(job.id, "o")
    assert board.wake(job.id, {"woken": True}) is True
    assert board.wake(job.id) is False, "waking a job that is not parked is a no-op"
    again = other.claim_next("o", timeout=10)
    assert again is not None and again.job_id == job.id
    assert again.document["delegated"] == ["t1"] and again.document["woken"] is True


def test_a_claim_that_ended_cannot_be_used_again(make_board: BoardFactory) -> None:
    """Park, wake, someone else's claim: the job node is new and the new claim has the old
    claim's job version; the old claim object is refused, by its board and by ZooKeeper."""
    board, other = make_board(), make_board()
    job = board.post("n", "f", {})
    claim = board.claim(job.id, "c")
    board.park(claim)
    assert board.wake(job.id)
    again = other.claim(job.id, "o")
    assert again.version == claim.version
    with pytest.raises(ClaimLost, match=r"already ended \(parked\)"):
        board.complete(claim, {"state": "SUCCESS"})
    claim.ended = None  # a board that forgot: the hold marker refuses it anyway
    with pytest.raises(ClaimLost):
        board.release(claim)
    assert other.get(job.id).owner == again.owner
    other.complete(again, {"state": "SUCCESS"})
    assert board.wait(job.id, timeout=5).outcome == {"state": "SUCCESS"}


def test_update_notifies_the_holder_and_complete_still_works(make_board: BoardFactory) -> None:
    conductor, operator = make_board(), make_board()
    job = operator.post("n", "f", {})
    claim = conductor.claim(job.id, "c")
    changed = threading.Event()
    claim.add_listener(lambda c, kind: changed.set() if kind == "changed" else None)
    operator.update(job.id, {"cancel": True})
    assert changed.wait(10)
    assert claim.document["cancel"] is True
    assert not claim.lost.is_set()
    conductor.complete(claim, {"state": "CANCELLED"})
    final = operator.get(job.id)
    assert final.state == JobState.COMPLETED and final.document is not None
    assert final.document["cancel"] is True


def test_update_of_a_parked_job_and_of_a_missing_job(board: JobBoard) -> None:
    claim = board.claim(board.post("n", "f", {}).id, "c")
    board.park(claim)
    updated = board.update(claim.job_id, {"note": "x"})
    assert updated.state == JobState.PARKED
    assert board.get(claim.job_id).document == updated.document
    with pytest.raises(JobNotFound):
        board.update("job-000-0000000000000-00000000", {"a": 1})
    with pytest.raises(InvalidInput, match="reserved"):
        board.update(claim.job_id, {"priority": 999})


def test_outcomes_are_purged_with_their_keys(board: JobBoard) -> None:
    claim = board.claim(board.post("n", "f", {}, key="k-purge").id, "c")
    board.complete(claim, {"state": "SUCCESS"})
    assert board.purge_outcomes(older_than=3600) == 0
    assert board.purge_outcomes(older_than=0) == 1
    with pytest.raises(JobNotFound):
        board.get(claim.job_id)
    fresh = board.post("n", "f", {}, key="k-purge")
    assert fresh.id != claim.job_id, "the key is free again once its outcome is purged"


def test_claim_next_honours_timeout_and_stop(board: JobBoard) -> None:
    assert board.claim_next("c", timeout=0.1) is None
    stop = threading.Event()

    def stop_and_interrupt() -> None:
        stop.set()
        board.interrupt()

    threading.Timer(0.2, stop_and_interrupt).start()
    assert board.claim_next("c", stop=stop) is None


def test_read_ahead_of_the_next_job_is_never_trusted_blindly(make_board: BoardFactory) -> None:
    board, operator = make_board(stampede_width=1), make_board()
    a, b, c, d = (board.post(name, "f", {}) for name in "abcd")
    first = board.claim_next("c", timeout=10)
    assert first is not None and first.job_id == a.id
    board.complete(first, {})  # reads b's document ahead, in the same round trip
    operator.update(b.id, {"cancel": True})  # ...which makes that read stale
    second = board.claim_next("c", timeout=10)
    assert second is not None and second.job_id == b.id
    assert second.document["cancel"] is True and second.document["attempts"] == 1
    board.complete(second, {})  # reads c ahead
    taken = operator.claim(c.id, "other")  # ...and someone else claims c meanwhile
    third = board.claim_next("c", timeout=10)
    assert third is not None and third.job_id == d.id
    assert operator.get(c.id).owner == taken.owner


def test_close_releases_threads_blocked_in_claim_next(make_board: BoardFactory) -> None:
    board = make_board()
    board.watch()
    result: list[object] = []
    waiting = threading.Thread(target=lambda: result.append(board.claim_next("c")))
    waiting.start()
    with board.watcher.view.condition:  # the waiter is blocked once it released the lock
        pass
    board.close()
    waiting.join(10)
    assert not waiting.is_alive() and result == [None]


def test_claim_next_skips_excluded_jobs(make_board: BoardFactory) -> None:
    board = make_board(stampede_width=1)
    first, second = board.post("a", "f", {}), board.post("b", "f", {})
    claim = board.claim_next("c", timeout=10, exclude={first.id})
    assert claim is not None and claim.job_id == second.id
    assert board.claim_next("c", timeout=0.1, exclude={first.id}) is None


def test_interrupt_wakes_a_stopped_claim_next_at_once(make_board: BoardFactory) -> None:
    board = make_board()
    board.watch()
    stop = threading.Event()
    result: list[object] = []
    waiting = threading.Thread(target=lambda: result.append(board.claim_next("c", stop=stop)))
    waiting.start()
    stop.set()
    board.interrupt()
    waiting.join(10)
    assert not waiting.is_alive() and result == [None]
    assert board.session_alive() and board.connected
