"""Retries (task and sub-flow), backoff with a fake clock, timeouts, revert order, cancel."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conductor.engine import FakeClock, RunControl, RunState, run_flow
from conductor.flow import Retry, Task, TaskContext, graph, linear, task
from persistence import AtomState, MemoryStore

WAIT = 10.0  # seconds: an upper bound for events that happen at once, never a sleep


class Log:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


class Step(Task):
    """Logs execute and revert; fails while `fail_attempts` says so."""

    def __init__(self, log: Log, name: str, fail_attempts: int = 0, revert_fails: bool = False,
                 **options: Any) -> None:
        self.log = log
        self.fail_attempts = fail_attempts
        self.revert_fails = revert_fails
        self.calls = 0
        super().__init__(name, **options)

    def execute(self, context: TaskContext) -> int:
        self.calls += 1
        self.log.add(f"{self.name}#{context.attempt}")
        if self.calls <= self.fail_attempts:
            raise ConnectionError(f"{self.name} failed (call {self.calls})")
        return context.attempt

    def revert(self, context: TaskContext) -> None:
        self.log.add(f"undo {self.name}")
        if self.revert_fails:
            raise RuntimeError(f"cannot undo {self.name}")


def test_retry_delays_follow_backoff_and_the_cap() -> None:
    log = Log()
    clock = FakeClock()
    flaky = Step(log, "flaky", fail_attempts=3,
                 retry=Retry(times=3, delay=1, backoff=2, max_delay=3))
    outcome = run_flow(linear(flaky), clock=clock)
    assert outcome.state is RunState.SUCCESS
    assert log.events == ["flaky#1", "flaky#2", "flaky#3", "flaky#4"]
    assert clock.jumps == [1, 2, 3]  # 1, 2, then 4 capped at 3


def test_jitter_stays_within_its_bounds_and_uses_the_injected_source() -> None:
    policy = Retry(times=5, delay=10, backoff=1, jitter=0.25)
    assert policy.delay_for(1, lambda: 0.0) == pytest.approx(7.5)
    assert policy.delay_for(1, lambda: 0.5) == pytest.approx(10.0)
    assert policy.delay_for(1, lambda: 0.999999) == pytest.approx(12.5, abs=1e-4)
    clock = FakeClock()
    flaky = Step(Log(), "flaky", fail_attempts=2, retry=Retry(times=2, delay=10, jitter=0.25))
    draws = iter([0.0, 1.0])
    outcome = run_flow(linear(flaky), clock=clock, random=lambda: next(draws))
    assert outcome.state is RunState.SUCCESS
    assert clock.jumps == [pytest.approx(7.5), pytest.approx(12.5)]


def test_times_counts_retries_and_the_last_failure_reverts_the_flow() -> None:
    log = Log()
    done = Step(log, "done")
    flaky = Step(log, "flaky", fail_attempts=99, retry=Retry(times=2))
    outcome = run_flow(linear(done, flaky), clock=FakeClock())
    assert outcome.state is RunState.REVERTED
    assert log.events == ["done#1", "flaky#1", "flaky#2", "flaky#3", "undo done"]
    assert outcome.failure is not None and outcome.failure.type == "ConnectionError"
    assert outcome.failure.message == "flaky failed (call 3)"


def test_only_the_listed_errors_are_retried_by_class_or_by_name() -> None:
    log = Log()
    by_class = Step(log, "by_class", fail_attempts=1, retry=Retry(times=1, on=(KeyError,)))
    assert run_flow(linear(by_class)).state is RunState.REVERTED
    by_name = Step(log, "by_name", fail_attempts=1, retry=Retry(times=1, on=("OSError",)))
    assert run_flow(linear(by_name)).state is RunState.SUCCESS  # ConnectionError is an OSError
    assert log.events == ["by_class#1", "by_name#1", "by_name#2"]


def test_subflow_retry_reverts_the_subflow_and_runs_it_again() -> None:
    log = Log()
    clock = FakeClock()
    sub = linear(Step(log, "b"), Step(log, "c", fail_attempts=1), name="sub",
                 retry=Retry(times=1, delay=5))
    store = MemoryStore()
    outcome = run_flow(linear(Step(log, "a"), sub, Step(log, "d")), clock=clock, store=store)
    assert outcome.state is RunState.SUCCESS
    assert log.events == ["a#1", "b#1", "c#1", "undo b", "b#2", "c#2", "d#1"]
    assert clock.jumps == [5]
    atoms = store.load(outcome.execution_id).atoms
    assert atoms["sub"].attempt == 2 and atoms["sub"].state is AtomState.SUCCESS


def test_task_retry_budget_restarts_with_each_subflow_round() -> None:
    log = Log()
    inner = Step(log, "inner", fail_attempts=3, retry=Retry(times=1))
    sub = linear(inner, name="sub", retry=Retry(times=1))
    outcome = run_flow(linear(sub), clock=FakeClock())
    assert outcome.state is RunState.SUCCESS
    # round 1: attempts 1 and 2 fail; round 2: attempt 3 fails, its retry (attempt 4) succeeds
    assert log.events == ["inner#1", "inner#2", "inner#3", "inner#4"]


def test_exhausted_subflow_retry_fails_the_flow_and_reverts_everything() -> None:
    log = Log()
    sub = linear(Step(log, "b"), Step(log, "c", fail_attempts=9), name="sub",
                 retry=Retry(times=1))
    outcome = run_flow(linear(Step(log, "a"), sub), clock=FakeClock())
    assert outcome.state is RunState.REVERTED
    assert log.events == ["a#1", "b#1", "c#1", "undo b", "b#2", "c#2", "undo b", "undo a"]


def test_revert_order_is_reverse_in_a_linear_flow() -> None:
    log = Log()
    flow = linear(Step(log, "a"), Step(log, "b"), Step(log, "c"), Step(log, "x", fail_attempts=1))
    outcome = run_flow(flow)
    assert outcome.state is RunState.REVERTED
    assert log.events[-3:] == ["undo c", "undo b", "undo a"]


def test_revert_order_respects_dependencies_in_a_graph() -> None:
    log = Log()

    a = task(lambda: log.add("a") or 1, name="a", provides="x",
             revert=lambda: log.add("undo a"))
    b = task(lambda x: log.add("b") or 1, name="b", provides="y",
             revert=lambda: log.add("undo b"))
    c = task(lambda x: log.add("c") or 1, name="c", provides="z",
             revert=lambda: log.add("undo c"))
    d = task(lambda y, z: log.add("d") or 1, name="d", provides="w",
             revert=lambda: log.add("undo d"))
    boom = task(lambda w: 1 / 0, name="boom")
    outcome = run_flow(graph(boom, d, c, b, a))
    assert outcome.state is RunState.REVERTED
    undo = [e for e in log.events if e.startswith("undo")]
    assert undo[0] == "undo d" and undo[-1] == "undo a"
    assert sorted(undo[1:3]) == ["undo b", "undo c"]
    assert outcome.failure is not None and outcome.failure.type == "ZeroDivisionError"


def test_a_failed_revert_ends_failed_and_keeps_the_original_failure() -> None:
    log = Log()
    store = MemoryStore()
    flow = linear(Step(log, "a"), Step(log, "b", revert_fails=True),
                  Step(log, "c", fail_attempts=1))
    outcome = run_flow(flow, store=store)
    assert outcome.state is RunState.FAILED
    assert outcome.failure is not None and outcome.failure.message == "c failed (call 1)"
    atoms = store.load(outcome.execution_id).atoms
    assert atoms["b"].state is AtomState.REVERT_FAILURE
    assert atoms["b"].failure is not None and "cannot undo b" in atoms["b"].failure.message
    assert atoms["a"].state is AtomState.SUCCESS  # not reverted: b depended on it
    assert "undo a" not in log.events
    assert store.load(outcome.execution_id).failure == outcome.failure


def _run_in_thread(**kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", run_flow(**kwargs)))
    thread.start()
    return thread, box


def test_timeout_fails_the_attempt_and_the_retry_policy_applies() -> None:
    clock = FakeClock()
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow(context: TaskContext) -> str:
        calls.append(context.attempt)
        if context.attempt == 1:
            started.set()
            release.wait(WAIT)
            return "late"
        return "fresh"

    flow = linear(task(slow, provides="value", timeout=5, retry=Retry(times=1)))
    thread, box = _run_in_thread(flow=flow, clock=clock)
    assert started.wait(WAIT)
    clock.advance(6)
    thread.join(WAIT)
    release.set()
    outcome = box["outcome"]
    assert outcome.state is RunState.SUCCESS and outcome.result == {"value": "fresh"}
    assert calls == [1, 2]


def test_timeout_without_retry_reverts_with_a_timeout_failure() -> None:
    clock = FakeClock()
    started = threading.Event()
    release = threading.Event()

    def stuck() -> None:
        started.set()
        release.wait(WAIT)

    thread, box = _run_in_thread(flow=linear(task(stuck, timeout=1)), clock=clock)
    assert started.wait(WAIT)
    clock.advance(1)
    thread.join(WAIT)
    release.set()
    failure = box["outcome"].failure
    assert box["outcome"].state is RunState.REVERTED
    assert failure.type == "conductor.flow.errors.TaskTimeout"
    assert "ran past its timeout of 1.0 s" in failure.message


def test_cancel_stops_at_the_next_boundary_and_reverts() -> None:
    log = Log()
    control = RunControl()
    started = threading.Event()

    def waits(context: TaskContext) -> None:
        log.add("waits")
        started.set()
        assert context.cancel.wait(WAIT)  # the task sees the cancellation

    store = MemoryStore()
    flow = linear(Step(log, "a"), task(waits, revert=lambda: log.add("undo waits")),
                  Step(log, "never"))
    thread, box = _run_in_thread(flow=flow, control=control, store=store)
    assert started.wait(WAIT)
    control.cancel()
    thread.join(WAIT)
    outcome = box["outcome"]
    assert outcome.state is RunState.REVERTED
    assert outcome.failure.type == "conductor.flow.errors.Cancelled"
    assert log.events == ["a#1", "waits", "undo waits", "undo a"]
    atoms = store.load(outcome.execution_id).atoms
    assert atoms["never"].state is AtomState.IGNORED
