"""The board across connection trouble: dropped connections and a restarted server."""

from __future__ import annotations

import threading

from kazoo.protocol.states import KazooState

from jobboard.model import BoardEvent, BoardEventKind, JobState
from jobboard.testing.zkserver import ZooKeeperServers
from tests.jobboard.conftest import BoardFactory, EventLog, drop_connection, wait_until


def test_jobs_posted_while_reconnecting_are_found(make_board: BoardFactory) -> None:
    waiter, producer = make_board(), make_board()
    events = EventLog(waiter)
    held = waiter.claim(producer.post("first", "f", {}).id, "w")
    resyncs = waiter.watcher.resyncs
    drop_connection(waiter.client)
    job = producer.post("while-away", "f", {})
    events.wait_for(BoardEventKind.RECONNECTED)
    claim = waiter.claim_next("w", timeout=30)
    assert claim is not None and claim.job_id == job.id
    assert waiter.watcher.resyncs > resyncs
    assert not held.lost.is_set(), "same session: the claim survived the reconnection"
    waiter.complete(held, {"state": "SUCCESS"})


def test_board_keeps_working_after_a_server_restart(
    zk_isolated_server: ZooKeeperServers, make_board: BoardFactory
) -> None:
    hosts = zk_isolated_server.connect_string
    waiter = make_board(hosts=hosts, root="/restart", session_timeout=30)
    producer = make_board(hosts=hosts, root="/restart", session_timeout=30)
    events = EventLog(waiter)
    held = waiter.claim(producer.post("before", "f", {}).id, "w")
    zk_isolated_server.restart(0)
    events.wait_for(BoardEventKind.RECONNECTED, timeout=60)
    job = producer.post("after", "f", {})
    claim = waiter.claim_next("w", timeout=30)
    assert claim is not None and claim.job_id == job.id
    assert not held.lost.is_set(), "sessions survive a server restart within their timeout"
    waiter.complete(held, {"state": "SUCCESS"})
    assert producer.get(held.job_id).state == JobState.COMPLETED


def test_a_listener_that_blocks_never_stalls_the_connection(make_board: BoardFactory) -> None:
    """Board events run on the board's own thread: a listener stuck on SUSPENDED holds back
    later events only, never kazoo's threads (which would stop reconnection and every reply)."""
    board, producer = make_board(), make_board()
    seen: list[BoardEventKind] = []
    stuck, unstick = threading.Event(), threading.Event()

    def listener(event: BoardEvent) -> None:
        seen.append(event.kind)
        if event.kind is BoardEventKind.SUSPENDED:
            stuck.set()
            unstick.wait(60)

    board.add_listener(listener)
    drop_connection(board.client)
    assert stuck.wait(30), "SUSPENDED was delivered"
    wait_until(lambda: board.client.state == KazooState.CONNECTED, what="kazoo to reconnect")
    claim = board.claim(producer.post("meanwhile", "f", {}).id, "w")  # replies still arrive
    board.complete(claim, {"state": "SUCCESS"})
    assert producer.get(claim.job_id).state == JobState.COMPLETED
    assert seen == [BoardEventKind.SUSPENDED], "later events wait behind the stuck listener"
    unstick.set()
    wait_until(lambda: seen[-1:] == [BoardEventKind.RECONNECTED], what="RECONNECTED, in order")
    assert seen == [BoardEventKind.SUSPENDED, BoardEventKind.RECONNECTED]
