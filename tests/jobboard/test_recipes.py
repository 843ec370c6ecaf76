"""The board's recipes (jobboard.recipes) on a real ZooKeeper: election, monotonic field,
intents, folder and member watches, entry reads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from jobboard.board import JobBoard
from jobboard.errors import BoardUnavailable, JobNotFound
from jobboard.recipes import (
    Election,
    FolderWatch,
    Intents,
    MemberWatch,
    MonotonicField,
    outcome_entry,
    parked_deadlines,
    parse_intent,
)
from jobboard.testing.zkserver import ZooKeeperServers
from tests.jobboard.conftest import BoardFactory, expire_session, wait_until

DEADLINE = 30.0


def contend_in_background(election: Election) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(election.contend()), daemon=True)
    thread.start()
    return thread, result


def test_one_contender_leads_until_it_resigns(make_board: BoardFactory) -> None:
    first, second = Election(make_board(), "first"), Election(make_board(), "second")
    assert first.contend()
    thread, result = contend_in_background(second)
    wait_until(lambda: len(first.client.get_children(first.path)) == 2, DEADLINE,
               "the second contender to queue")
    assert thread.is_alive() and result == [], "not elected while the first leads"
    first.resign()
    thread.join(DEADLINE)
    assert result == [True]
    second.resign()


def test_cancel_ends_a_pending_contend_and_every_later_one(make_board: BoardFactory) -> None:
    leader, waiting = Election(make_board(), "leader"), Election(make_board(), "waiting")
    assert leader.contend()
    thread, result = contend_in_background(waiting)
    wait_until(lambda: len(leader.client.get_children(leader.path)) == 2, DEADLINE,
               "the second contender to queue")
    waiting.cancel()
    thread.join(DEADLINE)
    assert result == [False]
    assert not waiting.contend()
    leader.resign()


def test_a_lost_session_is_flagged_and_reported(zk_server: ZooKeeperServers,
                                                make_board: BoardFactory) -> None:
    board = make_board(session_timeout=2.0)
    told = threading.Event()
    election = Election(board, "me", on_lost=told.set)
    election.start()
    try:
        assert election.contend() and not election.lost.is_set()
        expire_session(zk_server.connect_string, board.client)
        assert told.wait(DEADLINE) and election.lost.is_set()
    finally:
        election.close()


def test_a_monotonic_field_never_goes_down_nor_above_its_ceiling(board: JobBoard) -> None:
    job = board.post("m", "f", {}).id
    field = MonotonicField(board, job, "high", ceiling="attempts")
    until = time.monotonic() + DEADLINE

    def value() -> Any:
        return (board.get(job).document or {}).get("high")

    assert not field.raise_to(1, until=until), "attempts is 0: above the ceiling"
    assert value() is None
    board.release(board.claim(job, "t"))
    board.release(board.claim(job, "t"))
    assert field.raise_to(1, until=until) and value() == 1
    board.update(job, {"high": 2})
    assert field.raise_to(1, until=until) and value() == 2, "never lowered"
    board.trash(job, "test")
    assert not field.raise_to(2, until=until), "not pending any more"


def test_a_monotonic_field_gives_up_when_zookeeper_stays_away(
        zk_isolated_server: ZooKeeperServers, zk_root: str) -> None:
    board = JobBoard.connect(zk_isolated_server.connect_string, zk_root, session_timeout=10.0)
    try:
        job = board.post("m", "f", {}).id
        zk_isolated_server.pause(0)
        try:
            field = MonotonicField(board, job, "high")
            with pytest.raises(BoardUnavailable, match="could not raise high to 1"):
                field.raise_to(1, until=time.monotonic() + 0.5)
        finally:
            zk_isolated_server.resume(0)
    finally:
        board.close()


def test_intents_and_their_live_twins(make_board: BoardFactory) -> None:
    board = make_board()
    folder = board.paths.completions
    intents = Intents(board, folder)
    done = intents.open("job-a")
    assert sorted(board.client.get_children(folder)) == [done.name, done.name + "~live"]
    intents.close(done)
    assert board.client.get_children(folder) == []

    handed = intents.open("job-b")
    intents.hand_over(handed)
    assert board.client.get_children(folder) == [handed.name], "only the live node goes"
    intents.discard(handed)
    intents.discard(handed)  # already gone: fine
    assert board.client.get_children(folder) == []

    doer = make_board()
    orphaned = Intents(doer, folder).open("job-c")
    doer.close()  # its session ends: the live twin goes with it
    wait_until(lambda: board.client.get_children(folder) == [orphaned.name], DEADLINE,
               "the live twin to vanish")
    assert parse_intent(orphaned.name) == (orphaned, False)
    assert parse_intent(orphaned.name + "~live") == (orphaned, True)
    assert parse_intent("job-c") is None and parse_intent("job-c~a~b") is None


def test_a_folder_watch_reports_children_only_and_lists_on_start(board: JobBoard) -> None:
    folder = board.paths.parked
    board.client.create(f"{folder}/before", b"")
    listings: list[list[str]] = []
    changes: list[tuple[str, bool]] = []
    seen = threading.Condition()

    def listed(names: list[str]) -> None:
        with seen:
            listings.append(sorted(names))
            seen.notify_all()

    def changed(name: str, created: bool) -> None:
        with seen:
            changes.append((name, created))
            seen.notify_all()

    watch = FolderWatch(board, folder, changed, listed)
    watch.start()
    try:
        with seen:
            assert seen.wait_for(lambda: listings, DEADLINE)
        assert listings == [["before"]]
        board.client.create(f"{folder}/after", b"")
        board.client.set(f"{folder}/after", b"changed")  # data changes are not reported
        board.client.create(f"{folder}/after/deeper", b"")  # nor deeper nodes
        board.client.delete(f"{folder}/after/deeper")
        board.client.delete(f"{folder}/after")
        with seen:
            assert seen.wait_for(lambda: len(changes) >= 2, DEADLINE)
        board.client.create(f"{folder}/last", b"")
        with seen:
            assert seen.wait_for(lambda: len(changes) >= 3, DEADLINE)
        assert changes == [("after", True), ("after", False), ("last", True)]
    finally:
        watch.stop()


def test_a_member_watch_follows_the_presence_document(make_board: BoardFactory) -> None:
    watcher, member = make_board(), make_board()
    documents: list[dict[str, Any] | None] = []
    registered = threading.Event()

    def changed(document: dict[str, Any] | None) -> bool:
        documents.append(document)
        if document is not None:
            registered.set()
            return False  # stop watching
        return True

    MemberWatch(watcher, "conductors", "c1", changed)
    assert documents == [None], "called at once: no node yet"
    member.register("conductors", "c1", {"role": "test"})
    assert registered.wait(DEADLINE)
    document = documents[-1]
    assert document is not None and document["id"] == "c1" and document["role"] == "test"
    member.unregister("conductors", "c1")
    member.register("conductors", "c1")
    assert len(documents) == 2, "stopped once func returned False"


def test_reads_of_parked_deadlines_and_outcome_entries(board: JobBoard) -> None:
    until = time.time() + 3600
    timed, forever, pending = (board.post(n, "f", {}).id for n in ("t", "n", "p"))
    board.park(board.claim(timed, "me"), until)
    board.park(board.claim(forever, "me"))
    found = parked_deadlines(board, [timed, forever, pending])
    assert found.until == {timed: pytest.approx(until, abs=1e-5), forever: None}
    assert found.failed == [], "a job that is not parked is in neither"

    claim = board.claim(pending, "me")
    board.complete(claim, {"state": "SUCCESS"})
    entry = outcome_entry(board, pending)
    assert entry["outcome"] == {"state": "SUCCESS"}
    assert entry["claim"]["epoch"] == claim.epoch and entry["claim"]["owner"] == "me"
    with pytest.raises(JobNotFound):
        outcome_entry(board, timed)
