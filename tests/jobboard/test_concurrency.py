"""Concurrent claimers in separate processes, idempotent posts under concurrency."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from jobboard.board import JobBoard
from jobboard.model import JobState
from tests.jobboard.conftest import BoardFactory, ClaimerProcess

ROUNDS = 25
CLAIMERS = 4


@pytest.mark.slow
def test_exactly_one_of_several_processes_wins_each_claim(
    board: JobBoard, claimers: Callable[..., ClaimerProcess]
) -> None:
    processes = [claimers(f"p{i}") for i in range(CLAIMERS)]
    for round_number in range(ROUNDS):
        job = board.post("race", "f", {"round": round_number})
        for process in processes:  # all claim at once: each is blocked reading its stdin
            process.send(op="claim", job=job.id)
        replies = {process.owner: process.read() for process in processes}
        winners = [owner for owner, reply in replies.items() if reply["ok"]]
        assert len(winners) == 1, replies
        (winner,) = winners
        for owner, reply in replies.items():
            if owner != winner:
                assert reply["error"] == "AlreadyClaimed", reply
                assert reply["owner"]["id"] == winner, "the loser is told who owns it"
        current = board.get(job.id)
        assert current.state == JobState.CLAIMED and current.owner is not None
        assert current.owner["id"] == winner and current.epoch == replies[winner]["epoch"]
        winning = next(p for p in processes if p.owner == winner)
        assert winning.call(op="complete") == {"ok": True}


@pytest.mark.slow
def test_processes_draining_a_backlog_never_run_a_job_twice(
    board: JobBoard, claimers: Callable[..., ClaimerProcess]
) -> None:
    processes = [claimers(f"d{i}") for i in range(CLAIMERS)]
    posted = {board.post("drain", "f", {"i": i}, priority=i % 3).id for i in range(120)}
    for process in processes:
        process.send(op="drain", idle=1.5)
    done = [tuple(item) for process in processes for item in process.read()["done"]]
    counts = Counter(job_id for job_id, _ in done)
    assert set(counts) == posted and set(counts.values()) == {1}
    assert len(processes) > 1 and all(board.get(j).state == JobState.COMPLETED for j in posted)


def test_concurrent_posts_with_one_key_make_one_job(make_board: BoardFactory) -> None:
    boards = [make_board() for _ in range(4)]
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def post(board: JobBoard, n: int) -> None:
        barrier.wait(10)
        job = board.post("pay", "payments.charge", {"n": n}, key="invoice-42")
        with lock:
            results.append(job.id)

    threads = [threading.Thread(target=post, args=(boards[i % 4], i)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8 and len(set(results)) == 1
    assert [job.id for job in boards[0].jobs()] == results[:1]
