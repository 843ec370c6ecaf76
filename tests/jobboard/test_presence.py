"""Presence of conductors/workers: identity, duplicates, re-registration after session expiry."""

from __future__ import annotations

import pytest
from kazoo.protocol.connection import _SESSION_EXPIRED

from jobboard.board import JobBoard
from jobboard.errors import DuplicateMember
from jobboard.model import BoardEventKind
from jobboard.testing.zkserver import ZooKeeperServers
from tests.fixtures.zookeeper import ZkClientFactory
from tests.jobboard.conftest import BoardFactory, EventLog, expire_session, wait_until


def test_register_and_list_members_with_identity(board: JobBoard) -> None:
    document = board.register("conductors", "c1", {"flows": ["a", "b"]})
    assert document["id"] == "c1" and document["flows"] == ["a", "b"]
    (member,) = board.members("conductors")
    assert member["pid"] and member["host"] and member["started"]
    assert int(member["session"], 16) == board.session_id
    assert board.members("workers") == []
    board.unregister("conductors", "c1")
    assert board.members("conductors") == []


def test_a_live_duplicate_is_refused(make_board: BoardFactory) -> None:
    first, second = make_board(), make_board()
    first.register("conductors", "c1")
    with pytest.raises(DuplicateMember, match="c1"):
        second.register("conductors", "c1")
    first.close()  # its session ends: the id is free (here via a watch, while waiting)
    assert second.register("conductors", "c1", wait=10)["id"] == "c1"


def test_presence_is_renewed_after_session_expiry(
    zk_server: ZooKeeperServers, make_board: BoardFactory
) -> None:
    board = make_board(session_timeout=4)
    observer = make_board()
    events = EventLog(board)
    board.register("conductors", "c1")
    old_session = board.session_id
    expire_session(zk_server.connect_string, board.client)
    events.wait_for(BoardEventKind.NEW_SESSION)

    def renewed() -> bool:
        members = observer.members("conductors")
        return bool(members) and int(members[0]["session"], 16) == board.session_id

    wait_until(renewed, timeout=10, what="re-registration in the new session")
    assert board.session_id != old_session


def test_our_own_leftover_node_from_an_old_session_is_replaced(
    zk_server: ZooKeeperServers, make_board: BoardFactory
) -> None:
    """kazoo believes the session expired while the server still holds it (and its node)."""
    board = make_board(session_timeout=10)
    observer = make_board()
    events = EventLog(board)
    board.register("workers", "w1")
    old_session = board.session_id
    client = board.client
    client._queue.append((_SESSION_EXPIRED, None))  # client-side expiry: server session lives on
    client._connection._write_sock.send(b"\0")
    events.wait_for(BoardEventKind.NEW_SESSION)
    assert board.session_id != old_session

    def renewed() -> bool:
        members = observer.members("workers")
        return len(members) == 1 and int(members[0]["session"], 16) == board.session_id

    wait_until(renewed, timeout=10, what="the leftover node replaced")
    assert BoardEventKind.DUPLICATE_MEMBER not in events.kinds()


def test_duplicate_on_renewal_is_reported_as_an_event(
    make_board: BoardFactory, zk_client_factory: ZkClientFactory
) -> None:
    board, intruder = make_board(), make_board()
    events = EventLog(board)
    board.register("conductors", "c9")
    # Our node vanished and someone else took the id before our next session renews it.
    zk_client_factory().delete(board.paths.member("conductors", "c9"))
    intruder.register("conductors", "c9")
    board._presence._renew_all()  # what a NEW_SESSION triggers
    event = events.wait_for(BoardEventKind.DUPLICATE_MEMBER)
    assert event.detail["id"] == "c9" and event.detail["session"] == intruder.session_id
    intruder.unregister("conductors", "c9")

    def back() -> bool:
        members = intruder.members("conductors")
        return bool(members) and int(members[0]["session"], 16) == board.session_id

    wait_until(back, timeout=10, what="registration once the other member left")
