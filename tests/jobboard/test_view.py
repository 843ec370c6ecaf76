"""The in-memory claimable view: order, lazy deletion, bands, idempotent replays (pure logic)."""

from __future__ import annotations

import threading
import time

from jobboard.protocol.naming import JobIdGenerator
from jobboard.protocol.view import ClaimableView


def ids(*priorities: int) -> list[str]:
    generator = JobIdGenerator()
    return [generator.new_id(p) for p in priorities]


def test_candidates_come_from_the_best_band_in_fifo_order() -> None:
    view = ClaimableView()
    low1, high1, low2, high2, high3 = ids(1, 9, 1, 9, 9)
    for job_id in (low1, high1, low2, high2, high3):
        view.job_created(job_id)
    assert view.candidates(2) == [high1, high2]
    assert view.candidates(10) == [high1, high2, high3]
    view.claim_created(high1)
    view.claim_created(high2)
    view.job_deleted(high3)
    assert view.candidates(10) == [low1, low2]


def test_released_claims_become_claimable_again_and_replays_converge() -> None:
    view = ClaimableView()
    (a, b) = ids(5, 5)
    view.reset_jobs([a, b, "not-a-job-id"])
    view.reset_claims([a])
    assert view.claimable() == [b]
    view.claim_deleted(a)
    view.claim_deleted(a)  # replayed event: no duplicate
    view.job_created(b)
    assert view.candidates(10) == [a, b]
    assert len(view._heap) == 2
    view.claim_created(b)
    view.claim_created(b)
    assert view.candidates(10) == [a]


def test_excluded_ids_are_skipped_but_kept() -> None:
    view = ClaimableView()
    a, b, c = ids(3, 3, 1)
    for job_id in (a, b, c):
        view.job_created(job_id)
    assert view.candidates(10, exclude={a}) == [b]
    assert view.candidates(10, exclude={a, b}) == [c]
    assert view.candidates(10) == [a, b]


def test_waiters_wake_on_change_and_time_out_otherwise() -> None:
    view = ClaimableView()
    generation = view.generation
    assert view.wait_for_change(generation, time.monotonic() + 0.05) is False
    (job_id,) = ids(0)
    timer = threading.Timer(0.05, view.job_created, (job_id,))
    timer.start()
    assert view.wait_for_change(generation, time.monotonic() + 10) is True
    timer.join()
    assert view.candidates(1) == [job_id]


def test_a_large_backlog_keeps_the_best_job_first() -> None:
    view = ClaimableView()
    generator = JobIdGenerator()
    view.reset_jobs(generator.new_id(0) for _ in range(20000))
    best = generator.new_id(999)
    view.job_created(best)
    assert view.candidates(8)[0] == best
    assert len(view._heap) == 20001
