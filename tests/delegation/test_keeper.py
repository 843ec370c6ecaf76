"""The deadline keeper: elected, wakes parked jobs when their deadline passes, finishes
completions whose completer died, survives the death of its conductor, and idles silently."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.security import OPEN_ACL_UNSAFE

from conductor.delegation import DeadlineKeeper, nudge
from conductor.flow import Delegated, TaskContext, linear, task
from conductor.jobfields import DEADLINE_PASSED
from conductor.registry import Registry
from conductor.testing import wait_until
from jobboard.board import JobBoard
from jobboard.errors import AclMismatch
from jobboard.model import JobState
from jobboard.protocol.context import same_acl
from jobboard.recipes import Intents
from jobboard.testing.nodes import wait_for_node
from jobboard.testing.zkserver import ZooKeeperServers
from jobboard.zk.connect import digest_acl
from persistence import AtomState
from tests.delegation.conftest import DEADLINE, Rig
from tests.fixtures.zookeeper import ZkClientFactory


@pytest.fixture
def boards(zk_server: ZooKeeperServers, zk_root: str) -> Iterator[list[JobBoard]]:
    made: list[JobBoard] = []
    yield made
    for board in made:
        board.close()


def board_on(boards: list[JobBoard], zk_server: ZooKeeperServers, root: str) -> JobBoard:
    board = JobBoard.connect(zk_server.connect_string, root, session_timeout=1.0)
    boards.append(board)
    return board


def parked_job(board: JobBoard, until: float | None) -> str:
    job = board.post("p", "f", {}).id
    claim = board.claim(job, "parker")
    board.park(claim, until)
    return job


def keeper_on(board: JobBoard, name: str) -> DeadlineKeeper:
    keeper = DeadlineKeeper(board, name)
    keeper.start()
    return keeper


def test_one_keeper_leads_and_another_takes_over_when_its_conductor_dies(
        zk_server: ZooKeeperServers, zk_root: str, boards: list[JobBoard]) -> None:
    first_board = board_on(boards, zk_server, zk_root)
    first = keeper_on(first_board, "first")
    assert first.leading.wait(DEADLINE)
    second = keeper_on(board_on(boards, zk_server, zk_root), "second")
    try:
        producer = board_on(boards, zk_server, zk_root)
        job = parked_job(producer, time.time() + 3600)
        assert not second.leading.is_set()
        first_board.close()  # its session ends: the lock node goes with it
        boards.remove(first_board)
        assert second.leading.wait(DEADLINE), "the other keeper was elected"
        # The new leader re-listed parked/ and knows the job's deadline.
        wait_until(lambda: second.view.counts()[1] == 1, DEADLINE, "the deadline to be read")
        assert producer.get(job).state is JobState.PARKED
    finally:
        first.stop()
        second.stop()


def test_a_passed_deadline_wakes_the_job(zk_server: ZooKeeperServers, zk_root: str,
                                         boards: list[JobBoard]) -> None:
    board = board_on(boards, zk_server, zk_root)
    keeper = keeper_on(board, "k")
    try:
        assert keeper.leading.wait(DEADLINE)
        until = time.time() + 0.5
        far = parked_job(board, time.time() + 3600)
        forever = parked_job(board, None)
        soon = parked_job(board, until)
        wait_for_node(board.client, f"{zk_root}/jobs/{soon}", DEADLINE)
        woken = board.get(soon)
        assert woken.document is not None and woken.document[DEADLINE_PASSED] == until
        assert time.time() >= until
        assert board.get(far).state is JobState.PARKED
        assert board.get(forever).state is JobState.PARKED
        assert keeper.woken == 1
    finally:
        keeper.stop()


def test_deadlines_that_passed_while_no_keeper_ran_are_enforced_when_one_is_elected(
        zk_server: ZooKeeperServers, zk_root: str, boards: list[JobBoard]) -> None:
    board = board_on(boards, zk_server, zk_root)
    overdue = parked_job(board, time.time() - 60)
    keeper = keeper_on(board, "late")
    try:
        wait_for_node(board.client, f"{zk_root}/jobs/{overdue}", DEADLINE)
    finally:
        keeper.stop()


def test_an_intent_whose_completer_died_is_finished_by_the_keeper(
        zk_server: ZooKeeperServers, zk_root: str, boards: list[JobBoard]) -> None:
    board = board_on(boards, zk_server, zk_root)
    keeper = keeper_on(board, "k")
    try:
        assert keeper.leading.wait(DEADLINE)
        finished, orphaned = parked_job(board, None), parked_job(board, None)
        completer = board_on(boards, zk_server, zk_root)
        intents = Intents(completer, completer.paths.completions)
        intents.close(intents.open(finished))  # a completion that went all the way
        intents.open(orphaned)
        completer.close()  # the completer dies: its ~live node goes with its session
        boards.remove(completer)
        wait_for_node(board.client, f"{zk_root}/jobs/{orphaned}", DEADLINE)
        wait_until(lambda: board.client.get_children(board.paths.completions) == [], DEADLINE,
                   "the orphaned intent to be removed")
        # The keeper counts a finished intent after deleting it: wait for the count, not the node.
        wait_until(lambda: keeper.finished >= 1, DEADLINE, "the keeper to count the intent")
        assert keeper.finished == 1
        # Events are handled in order: the finished intent was seen (and ignored) before.
        assert board.get(finished).state is JobState.PARKED
    finally:
        keeper.stop()


def test_an_idle_keeper_with_many_parked_jobs_sends_no_requests(
        zk_server: ZooKeeperServers, zk_root: str, boards: list[JobBoard]) -> None:
    board = board_on(boards, zk_server, zk_root)
    keeper_board = board_on(boards, zk_server, zk_root)
    for _ in range(200):
        parked_job(board, time.time() + 3600)
    keeper = keeper_on(keeper_board, "idle")
    try:
        assert keeper.leading.wait(DEADLINE)
        wait_until(lambda: keeper.view.counts()[1] == 200, DEADLINE, "every deadline read")
        sent: list[str] = []
        original = keeper_board.client._call

        def counting(request: Any, async_object: Any) -> Any:
            sent.append(type(request).__name__)
            return original(request, async_object)

        keeper_board.client._call = counting
        # An observation window, not a wait for something: several ping intervals.
        window = threading.Event()
        window.wait(2.0)
        keeper_board.client._call = original
        assert sent == []
    finally:
        keeper.stop()


def test_a_completer_killed_after_recording_does_not_lose_the_completion(rig: Rig) -> None:
    rig.conductor("c1")
    job = rig.post_approval()
    token = rig.token(job)
    rig.wait_parked(job)
    child = subprocess.run(
        [sys.executable, "-m", "tests.delegation.completer_child", rig.zk, rig.root, rig.db,
         token], capture_output=True, timeout=DEADLINE, check=False)
    assert child.returncode == -9, child.stderr.decode()
    execution = rig.store.find_by_job(job)
    assert execution is not None
    row = rig.store.delegations(execution.id)[0]
    assert row.outcome == {"result": {"from": "the dead completer"}}, "recorded before dying"
    # Its session ends within a second; the keeper (in the conductor) wakes the job.
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "SUCCESS"
    assert outcome["result"]["decision"] == {"from": "the dead completer"}
    final = rig.store.find_by_job(job)
    assert final is not None and final.atoms["request"].state is AtomState.SUCCESS
    assert rig.board.client.get_children(rig.board.paths.completions) == []
    keepers = [r.conductor.keeper for r in rig.running]
    assert sum(k.finished for k in keepers) == 1
    assert json.loads(rig.board.client.get(f"{rig.root}/outcomes/{job}")[0])


def test_the_conductor_killed_while_its_job_is_parked_changes_nothing(rig: Rig) -> None:
    first = rig.process("first")
    job = rig.post_approval()
    token = rig.token(job)
    rig.wait_parked(job)
    first.kill()
    rig.process("second")
    report = rig.callbacks().complete(token, result="approved after a crash")
    assert report.job == "woken"
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "SUCCESS", rig.logs()
    assert outcome["result"]["decision"] == "approved after a crash"


def keeper_leader(rig: Rig) -> str | None:
    """Name of the elected keeper (the lowest lock node's identifier)."""
    path = f"{rig.root}/keeper"
    if not rig.board.client.exists(path):
        return None
    nodes = sorted(rig.board.client.get_children(path), key=lambda n: n.rsplit("__", 1)[-1])
    try:
        return rig.board.client.get(f"{path}/{nodes[0]}")[0].decode() if nodes else None
    except NoNodeError:  # its session just ended: look again
        return None


def test_a_deadline_is_enforced_after_the_keeping_conductor_died(rig: Rig) -> None:
    first = rig.process("first")
    wait_until(lambda: keeper_leader(rig) == "first", DEADLINE, "the first keeper to lead")
    rig.process("second")
    job = rig.post_approval(timeout=3.0)
    rig.token(job)
    rig.wait_parked(job)
    first.kill()  # the keeper dies with the job parked; the other conductor is elected
    wait_until(lambda: keeper_leader(rig) == "second", DEADLINE, "the second keeper to lead")
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "REVERTED", rig.logs()
    assert outcome["failure"]["type"] == "conductor.delegation.errors.DelegationTimeout"


def test_a_durable_sleep_parks_the_job_until_its_time(rig: Rig) -> None:
    slept_until: list[float] = []

    def nap(context: TaskContext) -> Delegated:
        slept_until.append(time.time() + 1.0)
        return context.sleep_until(slept_until[0])

    registry = Registry()
    registry.add_flow("t.nap", linear(task(nap, provides="slept"),
                                      task(lambda slept: time.time(), provides="woke_at")))
    rig.conductor("c1", registry)
    job = rig.board.post("nap", "t.nap", {}).id
    rig.wait_parked(job)
    assert rig.board.get(job).until == pytest.approx(slept_until[0], abs=1e-5)  # stored in µs
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "SUCCESS"
    assert outcome["result"]["slept"] is None
    assert outcome["result"]["woke_at"] >= slept_until[0] - 1e-5


def test_nudging_a_finished_job_reports_it_gone(rig: Rig) -> None:
    job = rig.board.post("done", "f", {}).id
    rig.board.complete(rig.board.claim(job, "me"), {"state": "SUCCESS"})
    assert nudge(rig.board, job, "m") == "gone"
    trashed = rig.board.post("trashed", "f", {}).id
    rig.board.trash(trashed, "test")
    assert nudge(rig.board, trashed, "m") == "gone"
    waiting = parked_job(rig.board, None)
    assert nudge(rig.board, waiting, "m") == "woken"
    assert nudge(rig.board, waiting, "m") == "notified"


def test_keeper_and_intent_nodes_carry_the_board_acl(
        zk_client_factory: ZkClientFactory, zk_root: str) -> None:
    credentials = "keeper:pw-123"
    acl = digest_acl(credentials)
    # A client of the caller's own, without default_acl: the board's ACL must still reach the
    # keeper's folders, its kazoo Lock nodes and the completion intents.
    board = JobBoard(zk_client_factory(auth_data=[("digest", credentials)]), zk_root, acl=acl)
    keeper = DeadlineKeeper(board, "k")
    try:
        keeper.start()
        assert keeper.leading.wait(DEADLINE)
        intents = Intents(board, board.paths.completions)
        intent = intents.open("job-1")
        client = board.client
        lock_nodes = client.get_children(keeper.election_path)
        intent_nodes = client.get_children(board.paths.completions)
        assert lock_nodes and len(intent_nodes) == 2
        paths = [keeper.election_path, board.paths.completions]
        paths += [f"{keeper.election_path}/{name}" for name in lock_nodes]
        paths += [f"{board.paths.completions}/{name}" for name in intent_nodes]
        for path in paths:
            assert same_acl(client.get_acls(path)[0], acl), path
        raw = zk_client_factory()
        for path in paths:
            with pytest.raises(NoAuthError):
                raw.get_children(path)
        intents.close(intent)
    finally:
        keeper.stop()
        board.close()

    # An open keeper/ folder (made before auth was turned on): the keeper refuses to start.
    secured = JobBoard(zk_client_factory(auth_data=[("digest", credentials)]), zk_root + "-2",
                       acl=acl)
    try:
        secured.client.create(f"{zk_root}-2/keeper", b"", OPEN_ACL_UNSAFE)
        refused = DeadlineKeeper(secured, "k")
        with pytest.raises(AclMismatch, match=f"^{zk_root}-2/keeper has"):
            refused.start()
        assert refused._thread is None
    finally:
        secured.close()
