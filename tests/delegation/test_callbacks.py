"""Completing delegations through the Python API, against conductors running in this process
(real ZooKeeper, real SQLite and PostgreSQL): wake a parked job, notify a running one, refuse
double, unknown and finished completions, and keep tokens out of every message."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from conductor.delegation import (
    AttemptSuperseded,
    Callbacks,
    DelegationAlreadyCompleted,
    InvalidCompletion,
    TaskFinished,
    UnknownDelegation,
    completion_outcome,
)
from conductor.engine.delegated.issuing import AttemptDelegator
from conductor.flow import Delegated, Retry, TaskContext, linear, task, unordered
from conductor.registry import Registry
from conductor.testing import wait_until
from jobboard.board import JobBoard
from jobboard.errors import BoardUnavailable
from jobboard.model import JobState
from jobboard.testing.zkserver import ZooKeeperServers
from persistence import AtomState, ExecutionState, open_store
from tests.delegation.conftest import DEADLINE, Rig


def test_a_parked_job_is_woken_by_a_completion_and_finishes_with_its_result(
        any_rig: Rig) -> None:
    rig = any_rig
    rig.conductor("c1")
    job = rig.post_approval()
    token = rig.token(job)
    rig.wait_parked(job)
    execution = rig.store.find_by_job(job)
    assert execution is not None and execution.state is ExecutionState.PARKED
    assert execution.atoms["request"].state is AtomState.DELEGATED
    report = rig.callbacks().complete(token, result={"approved": True, "by": "ana"})
    assert (report.job_id, report.task, report.attempt, report.job) == \
        (job, "request", 1, "woken")
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["state"] == "SUCCESS"
    assert outcome["result"]["outcome"] == {"decision": {"approved": True, "by": "ana"}}
    assert rig.board.client.get_children(rig.board.paths.completions) == [], "intent removed"
    with pytest.raises(DelegationAlreadyCompleted) as second:
        rig.callbacks().complete(token, result={"approved": False})
    assert token not in str(second.value)


def test_unknown_and_malformed_tokens_fail_at_once(rig: Rig) -> None:
    calls: list[str] = []
    real = rig.store.delegation

    def spy(token_hash: str) -> Any:
        calls.append(token_hash)
        return real(token_hash)

    rig.store.delegation = spy  # type: ignore[method-assign]
    callbacks = rig.callbacks()
    for bad in ("", "abc", "../../etc/passwd", "zkc_short", "zkc_" + "!" * 43, "x" * 10_000):
        started = time.monotonic()
        with pytest.raises(UnknownDelegation):
            callbacks.complete(bad, result=1)
        assert time.monotonic() - started < 1.0
    assert calls == [], "malformed tokens are refused before any look-up"
    well_formed_but_unknown = "zkc_" + "A" * 43
    with pytest.raises(UnknownDelegation) as unknown:
        callbacks.complete(well_formed_but_unknown, result=1)
    assert len(calls) == 1 and well_formed_but_unknown not in str(unknown.value)
    assert not rig.board.client.exists(rig.board.paths.completions) or \
        rig.board.client.get_children(rig.board.paths.completions) == []


def test_a_completion_of_a_running_job_reaches_its_conductor_at_once(rig: Rig) -> None:
    delegated, used, release = threading.Event(), threading.Event(), threading.Event()
    handed: list[str] = []

    def ask(context: TaskContext) -> Delegated:
        handed.append(context.delegate().token)
        delegated.set()
        return Delegated()

    def use(answer: Any) -> Any:
        used.set()
        return answer

    def slow() -> str:
        assert release.wait(DEADLINE)
        return "slow done"

    registry = Registry()
    registry.add_flow("t.running", unordered(
        linear(task(ask, provides="answer"), task(use, provides="used")),
        task(slow, provides="slow")))
    rig.conductor("c1", registry)
    job = rig.board.post("running", "t.running", {}).id
    assert delegated.wait(DEADLINE)
    report = rig.callbacks().complete(handed[0], result=42)
    assert report.job == "notified", "the job is claimed, not parked"
    assert used.wait(DEADLINE), "its conductor applied the completion while `slow` ran"
    assert rig.board.get(job).state is JobState.CLAIMED
    release.set()
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["result"] == {
        "answer": 42, "used": 42, "slow": "slow done"}


def test_every_token_of_a_task_stays_valid_until_the_task_has_an_outcome(rig: Rig) -> None:
    """Attempt 1 times out (the keeper wakes the job at its deadline), attempt 2 delegates
    anew; an error sent with attempt 1's token is refused (it would fail attempt 2), its
    result completes the task; then attempt 2's token answers 'task finished'."""
    handed: dict[int, str] = {}

    def ask(context: TaskContext) -> Delegated:
        deadline = time.time() + 1.0 if context.attempt == 1 else None
        handed[context.attempt] = context.delegate(deadline).token
        return Delegated()

    registry = Registry()
    registry.add_flow("t.retry", linear(task(ask, provides="answer", retry=Retry(times=1))))
    rig.conductor("c1", registry)
    job = rig.board.post("retry", "t.retry", {}).id
    wait_until(lambda: 2 in handed, DEADLINE, "attempt 2 to delegate")
    rig.wait_parked(job)
    callbacks = rig.callbacks()
    with pytest.raises(AttemptSuperseded):
        callbacks.complete(handed[1], error="too late to matter")
    report = callbacks.complete(handed[1], result="from the first request")
    assert report.attempt == 1 and report.job == "woken"
    outcome = rig.outcome(job).outcome
    assert outcome is not None and outcome["result"] == {"answer": "from the first request"}
    with pytest.raises(TaskFinished) as finished:
        callbacks.complete(handed[2], result="second")
    assert handed[2] not in str(finished.value)
    execution = rig.store.find_by_job(job)
    assert execution is not None and execution.atoms["ask"].attempt == 2
    assert execution.atoms["ask"].failure is None
    first_failure = [r for r in rig.store.delegations(execution.id) if r.attempt == 1]
    assert first_failure[0].outcome == {"result": "from the first request"}


def test_bad_completions_are_refused_with_the_reason() -> None:
    with pytest.raises(InvalidCompletion, match="exactly one"):
        completion_outcome()
    with pytest.raises(InvalidCompletion, match="exactly one"):
        completion_outcome(1, "and an error")
    with pytest.raises(InvalidCompletion, match="non-empty"):
        completion_outcome(error="  ")
    with pytest.raises(InvalidCompletion, match="not JSON"):
        completion_outcome({1, 2})
    with pytest.raises(InvalidCompletion, match="limit"):
        completion_outcome(error="x" * 9000)
    secret = "zkc_" + "B" * 43
    failure = completion_outcome(error=f"rejected {secret}")["failure"]
    assert secret not in failure["message"]
    assert failure["type"] == "conductor.delegation.errors.DelegationFailed"


def test_without_zookeeper_nothing_is_recorded(zk_isolated_server: ZooKeeperServers,
                                              migrated_sqlite_url: str) -> None:
    store = open_store(migrated_sqlite_url)
    board = JobBoard.connect(zk_isolated_server.connect_string, "/cb", session_timeout=2,
                             op_timeout=2)
    try:
        created = store.create_execution("job-999-0000000000001-00000001", "f", "1", {})
        store.take_over(created.id, 1, "me")
        token = AttemptDelegator(store, created.id, 1, task="ask", attempt=1).delegate(
            None, "fail").token
        zk_isolated_server.stop()
        started = time.monotonic()
        with pytest.raises(BoardUnavailable):
            Callbacks(store, board).complete(token, result=1)
        assert time.monotonic() - started < 10
        assert store.delegations(created.id)[0].completed_at is None
    finally:
        board.close()
        store.close()
