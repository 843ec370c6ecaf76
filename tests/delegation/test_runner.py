"""The runner's side of delegations, on real SQLite files (and memory): issue, park, settle.

No ZooKeeper here: completions are recorded with the store's compare-and-set directly, as the
completion front ends do, and the runner is resumed the way a conductor resumes a woken job.
Deadlines use the fake clock, so expiry is tested without waiting.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from conductor.delegation import Callbacks
from conductor.delegation.errors import DelegationFailed, TaskFinished
from conductor.engine import (
    FakeClock,
    RunControl,
    RunResult,
    RunState,
    compile_flow,
    run_flow,
)
from conductor.engine.delegated import tokens
from conductor.engine.delegated.issuing import AttemptDelegator, UnavailableDelegator
from conductor.engine.runner import Runner
from conductor.flow import Delegated, Retry, TaskContext, linear, task, unordered
from conductor.flow.context import DelegationUnavailable
from persistence import (
    AtomState,
    DelegationAlreadyCompleted,
    ExecutionStore,
    Failure,
    Fenced,
    MemoryStore,
    open_store,
)
from persistence.records import DelegationRecord

START = 1_000_000.0


class Handed:
    """What the third party received: tokens by (task, attempt)."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[str, int], str] = {}
        self.calls: list[tuple[str, int]] = []


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> ExecutionStore:
    if request.param == "memory":
        return MemoryStore()
    made = open_store(request.getfixturevalue("migrated_sqlite_url"))
    request.addfinalizer(made.close)
    return made


def delegating(handed: Handed, name: str, within: float | None = None, *,
               clock: FakeClock | None = None, retry: Retry | None = None,
               on_deadline: str = "fail") -> Any:
    """A task handing out one token per attempt, due `within` seconds of the fake clock."""
    def ask(context: TaskContext) -> Delegated:
        handed.calls.append((context.task, context.attempt))
        deadline = None if within is None or clock is None else clock.now() + within
        handle = context.delegate(deadline, on_deadline=on_deadline)
        handed.tokens[(context.task, context.attempt)] = handle.token
        return Delegated()
    return task(name=name, provides="answer", retry=retry)(ask)


def use(answer: Any) -> dict[str, Any]:
    return {"used": answer}


def resume(store: ExecutionStore, flow: Any, job: str, epoch: int, **options: Any) -> RunResult:
    return run_flow(flow, store=store, job_id=job, epoch=epoch, **options)


def complete(store: ExecutionStore, token: str, **outcome: Any) -> DelegationRecord:
    return store.complete_delegation(tokens.token_hash(token), outcome)


def test_delegate_parks_and_a_completion_resumes_with_its_result(store: ExecutionStore) -> None:
    handed = Handed()
    flow = linear(delegating(handed, "ask"), task(use, name="use", provides="out"))
    first = resume(store, flow, "job-1", 1)
    assert first.state is RunState.PARKED and first.park_until is None
    token = handed.tokens[("ask", 1)]
    assert tokens.well_formed(token)
    row = store.delegations(first.execution_id)[0]
    assert row.token_hash == tokens.token_hash(token) and token not in repr(row)
    assert store.load(first.execution_id).atoms["ask"].state is AtomState.DELEGATED
    complete(store, token, result={"approved": True})
    done = resume(store, flow, "job-1", 2)
    assert done.state is RunState.SUCCESS
    assert done.result == {"answer": {"approved": True}, "out": {"used": {"approved": True}}}
    assert handed.calls == [("ask", 1)], "the delegating task is not called again"
    with pytest.raises(DelegationAlreadyCompleted):
        complete(store, token, result=1)


def test_a_completion_while_the_job_runs_is_applied_by_the_running_runner(
        store: ExecutionStore) -> None:
    handed, delegated, used, release = Handed(), threading.Event(), threading.Event(), \
        threading.Event()
    order: list[str] = []

    def ask(context: TaskContext) -> Delegated:
        handed.tokens["ask", 1] = context.delegate().token
        delegated.set()
        return Delegated()

    def after(answer: Any) -> Any:
        order.append("after")
        used.set()
        return answer

    def slow() -> int:
        assert release.wait(30)
        order.append("slow")
        return 1

    flow = unordered(linear(task(ask, provides="answer"), task(after, provides="out")),
                     task(slow, provides="s"))
    compiled = compile_flow(flow, {})
    created = store.create_execution("job-run", "f", "1", {})
    runner = Runner(store, compiled, store.take_over(created.id, 1, "me"), 1)
    outcome: list[RunResult] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run()))
    thread.start()
    assert delegated.wait(30)
    complete(store, handed.tokens["ask", 1], result=7)
    runner.notify_delegations()  # what a conductor does on the board's "changed" notification
    assert used.wait(30), "the running runner applied the completion while `slow` still ran"
    release.set()
    thread.join(30)
    assert order == ["after", "slow"]
    assert outcome[0].state is RunState.SUCCESS and outcome[0].result["out"] == 7


def test_a_completion_that_beats_the_delegated_return_settles_without_parking(
        store: ExecutionStore) -> None:
    def ask(context: TaskContext) -> Delegated:
        handle = context.delegate()
        complete(store, handle.token, result="fast")  # the third party answered at once
        return Delegated()

    outcome = run_flow(linear(task(ask, provides="answer"), task(use, provides="out")),
                       store=store)
    assert outcome.state is RunState.SUCCESS and outcome.result["out"] == {"used": "fast"}


def test_an_error_completion_fails_the_attempt_and_the_retry_policy_applies(
        store: ExecutionStore) -> None:
    handed = Handed()
    flow = linear(delegating(handed, "ask", retry=Retry(times=1, on=(DelegationFailed,))))
    assert resume(store, flow, "job-e", 1).state is RunState.PARKED
    complete(store, handed.tokens["ask", 1],
             failure=Failure("conductor.delegation.errors.DelegationFailed", "no").to_json())
    assert resume(store, flow, "job-e", 2).state is RunState.PARKED  # attempt 2 delegated
    assert handed.calls == [("ask", 1), ("ask", 2)]
    complete(store, handed.tokens["ask", 2],
             failure=Failure("conductor.delegation.errors.DelegationFailed", "still no").to_json())
    failed = resume(store, flow, "job-e", 3)
    assert failed.state is RunState.REVERTED
    assert failed.failure is not None and failed.failure.message == "still no"


def test_an_expired_deadline_fails_the_attempt_and_an_older_token_completes_the_retry(
        store: ExecutionStore) -> None:
    """Temporal's stranded token, done better: attempt 1 timed out and attempt 2 delegated
    anew, yet the third party holding attempt 1's token can still complete the task."""
    clock = FakeClock(START)
    handed = Handed()
    flow = linear(delegating(handed, "ask", 60, clock=clock, retry=Retry(times=1)),
                  task(use, name="use", provides="out"))
    parked = resume(store, flow, "job-d", 1, clock=clock)
    assert parked.state is RunState.PARKED and parked.park_until == START + 60
    clock.advance(61)  # the keeper wakes the job once the deadline has passed
    again = resume(store, flow, "job-d", 2, clock=clock)
    assert again.state is RunState.PARKED
    assert handed.calls == [("ask", 1), ("ask", 2)]
    saved = store.load(again.execution_id).atoms["ask"]
    assert saved.attempt == 2 and saved.state is AtomState.DELEGATED
    # attempt 1's failure was a DelegationTimeout (a TaskTimeout)
    complete(store, handed.tokens["ask", 1], result="late but good")
    done = resume(store, flow, "job-d", 3, clock=clock)
    assert done.state is RunState.SUCCESS and done.result["out"] == {"used": "late but good"}
    assert handed.calls == [("ask", 1), ("ask", 2)]


def test_without_retries_an_expired_deadline_fails_the_task_with_a_timeout(
        store: ExecutionStore) -> None:
    clock = FakeClock(START)
    handed = Handed()
    flow = linear(delegating(handed, "ask", 5, clock=clock))
    assert resume(store, flow, "job-t", 1, clock=clock).state is RunState.PARKED
    clock.advance(5)
    failed = resume(store, flow, "job-t", 2, clock=clock)
    assert failed.state is RunState.REVERTED and failed.failure is not None
    assert failed.failure.type == "conductor.delegation.errors.DelegationTimeout"
    assert "deadline" in failed.failure.message


def test_a_late_result_during_the_retry_backoff_completes_the_task_without_calling_it(
        store: ExecutionStore) -> None:
    clock = FakeClock(START)
    handed = Handed()
    flow = linear(delegating(handed, "ask", 10, clock=clock,
                             retry=Retry(times=2, delay=100)))
    resume(store, flow, "job-b", 1, clock=clock)
    clock.advance(11)
    # Woken past the deadline: attempt 1 times out, attempt 2 waits out its backoff; the
    # conductor stops meanwhile (the state is saved).
    stopping = RunControl()
    stopping.stop()
    assert resume(store, flow, "job-b", 2, clock=clock, control=stopping).state is \
        RunState.SUSPENDED
    saved = store.find_by_job("job-b")
    assert saved is not None and saved.atoms["ask"].state is AtomState.PENDING
    assert saved.atoms["ask"].attempt == 2
    complete(store, handed.tokens["ask", 1], result="from attempt 1")
    outcome = resume(store, flow, "job-b", 3, clock=clock)
    assert outcome.state is RunState.SUCCESS and outcome.result == {"answer": "from attempt 1"}
    assert handed.calls == [("ask", 1)], "attempt 2 never called the task"
    assert store.load(outcome.execution_id).atoms["ask"].attempt == 2


def test_sleep_until_is_a_durable_sleep(store: ExecutionStore) -> None:
    clock = FakeClock(START)

    def nap(context: TaskContext) -> Delegated:
        return context.sleep_until(START + 3600)

    flow = linear(task(nap, provides="slept"), task(lambda slept: "awake", provides="out"))
    parked = resume(store, flow, "job-s", 1, clock=clock)
    assert parked.state is RunState.PARKED and parked.park_until == START + 3600
    assert resume(store, flow, "job-s", 2, clock=clock).state is RunState.PARKED  # too early
    clock.advance(3600)
    done = resume(store, flow, "job-s", 3, clock=clock)
    assert done.state is RunState.SUCCESS and done.result == {"slept": None, "out": "awake"}


@pytest.mark.parametrize("answered", [True, False])
def test_waiting_for_a_person_until_a_deadline_treats_the_timeout_as_success(
        store: ExecutionStore, answered: bool) -> None:
    clock = FakeClock(START)
    handed = Handed()
    flow = linear(delegating(handed, "ask", 60, clock=clock, on_deadline="succeed"))
    parked = resume(store, flow, f"job-w{answered}", 1, clock=clock)
    assert parked.park_until == START + 60
    if answered:
        complete(store, handed.tokens["ask", 1], result="yes")
    else:
        clock.advance(60)
    done = resume(store, flow, f"job-w{answered}", 2, clock=clock)
    assert done.state is RunState.SUCCESS and done.result == {"answer": "yes" if answered
                                                              else None}


def test_a_bare_delegated_deadline_is_saved_and_enforced(store: ExecutionStore) -> None:
    clock = FakeClock(START)
    flow = linear(task(lambda: Delegated(deadline=START + 30), name="wait"))
    parked = resume(store, flow, "job-bare", 1, clock=clock)
    assert parked.park_until == START + 30
    rows = store.delegations(parked.execution_id)
    assert [r.token_hash.split(":")[0] for r in rows] == ["deadline"]
    clock.advance(30)
    failed = resume(store, flow, "job-bare", 2, clock=clock)
    assert failed.state is RunState.REVERTED
    assert failed.failure is not None and "DelegationTimeout" in failed.failure.type


def test_a_deadline_floor_counts_a_deadline_as_passed_despite_a_lagging_clock(
        store: ExecutionStore) -> None:
    clock = FakeClock(START)
    flow = linear(task(lambda: Delegated(deadline=START + 30), name="wait"))
    resume(store, flow, "job-f", 1, clock=clock)
    failed = resume(store, flow, "job-f", 2, clock=clock, deadline_floor=START + 30)
    assert failed.state is RunState.REVERTED


def test_a_stale_owner_cannot_issue_tokens(store: ExecutionStore) -> None:
    created = store.create_execution("job-x", "f", "1", {})
    store.take_over(created.id, 1, "old")
    store.take_over(created.id, 2, "new")
    stale = AttemptDelegator(store, created.id, 1, task="ask", attempt=1)
    with pytest.raises(Fenced):
        stale.delegate(None, "fail")
    assert store.delegations(created.id) == []


def test_tokens_stay_out_of_reprs_and_process_workers_get_a_clear_error(
        store: ExecutionStore) -> None:
    created = store.create_execution("job-r", "f", "1", {})
    store.take_over(created.id, 1, "me")
    delegator = AttemptDelegator(store, created.id, 1, task="ask", attempt=1,
                                 callback_base="https://cb.example/")
    context = TaskContext(created.id, "job-r", "ask", 1, delegator=delegator)
    handle = context.delegate(START)
    assert handle.url == f"https://cb.example/v1/callbacks/{handle.token}"
    for text in (repr(handle), str(handle), repr(context), repr(delegator)):
        assert handle.token not in text
    assert tokens.redact(f"POST /v1/callbacks/{handle.token}") == \
        "POST /v1/callbacks/zkc_<redacted>"
    in_worker = pickle.loads(pickle.dumps(context))  # what a process pool does
    assert isinstance(in_worker.delegator, UnavailableDelegator)
    with pytest.raises(DelegationUnavailable, match="process worker"):
        in_worker.delegate()
    with pytest.raises(DelegationUnavailable, match="no delegation support"):
        TaskContext(created.id, "job-r", "ask", 1).delegate()
    with pytest.raises(ValueError, match="finite"):
        context.delegate(float("nan"))
    with pytest.raises(ValueError, match="needs a deadline"):
        context.delegate(on_deadline="succeed")


class _NoBoard:
    """A board (and intents) the completion path must not reach: it refuses before."""

    def session_alive(self) -> bool:
        raise AssertionError("the completion was not refused up front")


def refusing_callbacks(store: ExecutionStore) -> Callbacks:
    nothing: Any = _NoBoard()
    return Callbacks(store, nothing, intents=nothing)


def cancellable(handed: Handed, log: list[str]) -> Any:
    """prepare -> (ask [reverts: withdraws the request] | ask2 [no revert]) -> use."""
    def prepare() -> str:
        log.append("prepare")
        return "prepared"

    def unprepare() -> None:
        log.append("unprepare")

    def ask(prepared: str, context: TaskContext) -> Delegated:
        handed.calls.append((context.task, context.attempt))
        handed.tokens[(context.task, context.attempt)] = context.delegate().token
        return Delegated()

    def withdraw(result: Any, context: TaskContext) -> None:
        log.append(f"withdraw {context.task} result={result!r}")

    return linear(task(prepare, provides="prepared", revert=unprepare),
                  unordered(task(ask, name="ask", provides="answer", revert=withdraw),
                            task(ask, name="ask2", provides="other")),
                  task(use, name="use", provides="out"))


def test_cancel_of_a_parked_execution_stops_waiting_and_reverts_at_once(
        store: ExecutionStore) -> None:
    """No deadline anywhere: the cancelled run ends its delegated tasks (the one with a
    revert is told, with result None), reverts the rest, and never parks again."""
    clock = FakeClock(START)
    handed, log = Handed(), []
    flow = cancellable(handed, log)
    parked = resume(store, flow, "job-c", 1, clock=clock)
    assert parked.state is RunState.PARKED and parked.park_until is None
    cancel = RunControl()
    cancel.cancel()  # what a conductor does with a woken job whose document asks to cancel
    done = resume(store, flow, "job-c", 2, clock=clock, control=cancel)
    assert done.state is RunState.REVERTED, done
    assert done.failure is not None and done.failure.type == "conductor.flow.errors.Cancelled"
    assert log == ["prepare", "withdraw ask result=None", "unprepare"]
    assert clock.jumps == [], "nothing waited for a deadline"
    atoms = store.load(done.execution_id).atoms
    for name in ("ask", "ask2"):
        assert atoms[name].state is AtomState.REVERTED
        failure = atoms[name].failure
        assert failure is not None and failure.type == "conductor.flow.errors.Cancelled"
    assert atoms["prepare"].state is AtomState.REVERTED
    assert atoms["use"].state is AtomState.IGNORED
    callbacks = refusing_callbacks(store)
    for key in (("ask", 1), ("ask2", 1)):
        with pytest.raises(TaskFinished, match="already has an outcome"):
            callbacks.complete(handed.tokens[key], result="too late")
    assert handed.calls == [("ask", 1), ("ask2", 1)]


def test_a_completion_recorded_before_the_cancel_is_applied_still_counts(
        store: ExecutionStore) -> None:
    clock = FakeClock(START)
    handed, log = Handed(), []
    flow = cancellable(handed, log)
    assert resume(store, flow, "job-cc", 1, clock=clock).state is RunState.PARKED
    complete(store, handed.tokens[("ask", 1)], result="yes")  # the third party was told OK
    cancel = RunControl()
    cancel.cancel()
    done = resume(store, flow, "job-cc", 2, clock=clock, control=cancel)
    assert done.state is RunState.REVERTED
    assert log == ["prepare", "withdraw ask result='yes'", "unprepare"]
    atoms = store.load(done.execution_id).atoms
    assert atoms["ask"].result == "yes" and atoms["ask"].failure is None


def test_a_task_that_delegates_after_the_cancel_is_ended_at_once(
        store: ExecutionStore) -> None:
    """The cancel arrives while the delegating attempt still runs: when it returns Delegated
    the run does not park, it ends that delegation and reverts."""
    clock = FakeClock(START)
    started, release = threading.Event(), threading.Event()
    log: list[str] = []
    tokens_: list[str] = []

    def ask(context: TaskContext) -> Delegated:
        tokens_.append(context.delegate().token)
        started.set()
        assert release.wait(30)
        return Delegated()

    def withdraw(result: Any) -> None:
        log.append(f"withdraw result={result!r}")

    flow = linear(task(ask, provides="answer", revert=withdraw))
    control = RunControl()
    outcome: list[RunResult] = []
    thread = threading.Thread(target=lambda: outcome.append(
        resume(store, flow, "job-cr", 1, clock=clock, control=control)))
    thread.start()
    assert started.wait(30)
    control.cancel()
    release.set()
    thread.join(30)
    assert outcome and outcome[0].state is RunState.REVERTED, outcome
    assert log == ["withdraw result=None"]
    with pytest.raises(TaskFinished):
        refusing_callbacks(store).complete(tokens_[0], result=1)
