"""Costs that must not grow: an idle claimer sends nothing; a claim is not a re-listing."""

from __future__ import annotations

import threading

from jobboard.board import JobBoard
from jobboard.testing.zkserver import ZooKeeperServers, four_letter_word
from tests.jobboard.conftest import BoardFactory, RequestCounter


def test_idle_claimer_on_a_busy_board_sends_no_requests(
    zk_server: ZooKeeperServers, make_board: BoardFactory
) -> None:
    producer, claimer = make_board(), make_board(session_timeout=3)
    for i in range(1000):
        producer.post("n", "f", {"i": i})
    claimer.watch()
    holder = make_board()
    held = [holder.claim_next("h", timeout=10) for _ in range(10)]
    assert all(held)
    counter = RequestCounter(claimer.client)
    stop = threading.Event()
    # An observation window, not a wait for something: 2.5 s is several ping intervals.
    idle = threading.Thread(target=lambda: stop.wait(2.5))
    idle.start()
    idle.join()
    assert counter.requests == []
    # kazoo's pings are the only traffic: the server saw the session alive throughout.
    assert f"0x{claimer.session_id:x}" in four_letter_word(zk_server.ports[0].client, "cons")


def test_claims_do_not_make_other_claimers_re_list_the_backlog(make_board: BoardFactory) -> None:
    producer, watcher, worker = make_board(), make_board(), make_board()
    for i in range(200):
        producer.post("n", "f", {"i": i})
    watcher.watch()
    worker.watch()
    resyncs = watcher.watcher.resyncs
    counter = RequestCounter(watcher.client)
    for _ in range(50):
        claim = worker.claim_next("w", timeout=10)
        assert claim is not None
        worker.complete(claim, {"state": "SUCCESS"})
    # The watcher's view followed every claim and completion from events alone.
    marker = producer.post("marker", "f", {}, priority=999)
    view = watcher.watcher.view
    with view.condition:
        while not view.is_claimable(marker.id):
            assert view.condition.wait(10)
    assert watcher.watcher.resyncs == resyncs
    assert counter.requests == []
    jobs, claimed = view.counts()
    assert (jobs, claimed) == (151, 0)


def test_claim_and_complete_cost_three_requests(board: JobBoard) -> None:
    jobs = [board.post("n", "f", {}) for _ in range(20)]
    board.watch()
    board.claim(board.post("warm", "f", {}).id, "c")  # creates the session anchor once
    counter = RequestCounter(board.client)
    for job in jobs:
        claim = board.claim(job.id, "c")
        board.complete(claim, {"state": "SUCCESS"})
    # Events are handled in order: once the marker's claim is in the view, every event of the
    # claims above has been handled, and none of them needed a read.
    marker = board.claim(board.post("marker", "f", {}).id, "c")
    view = board.watcher.view
    with view.condition:
        while not view.is_claimed(marker.job_id):
            assert view.condition.wait(10)
    assert counter.requests == ["GetData", "Transaction", "Transaction"] * 20 + [
        "Create",
        "GetData",
        "Transaction",
    ]


def test_claim_next_after_complete_costs_one_request(make_board: BoardFactory) -> None:
    board = make_board(stampede_width=1)
    for _ in range(5):
        board.post("n", "f", {})
    claim = board.claim_next("c", timeout=10)
    assert claim is not None
    counter = RequestCounter(board.client)
    for _ in range(4):
        board.complete(claim, {"state": "SUCCESS"})  # + the next job's read, pipelined
        claim = board.claim_next("c", timeout=10)
        assert claim is not None
    assert counter.requests == ["GetData", "Transaction", "Transaction"] * 4
