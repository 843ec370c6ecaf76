"""Scenarios of the passive core, driven synchronously: nesting, escalation, repeats in
retried sub-flows, delegation, reloading saved states."""

from __future__ import annotations

from collections import Counter
from typing import Any

from conductor.engine import Invocation, compile_flow
from conductor.engine.core import Core
from conductor.flow import Retry, linear, repeat, task, unordered
from persistence import AtomRecord, AtomState, ExecutionState
from tests.engine.driver import drive


def _noop() -> None:
    return None


def _undo() -> None:
    return None


def t(name: str, provides: Any = None, **options: Any) -> Any:
    return task(_noop, name=name, provides=provides, revert=_undo, **options)


def test_an_exhausted_inner_retry_hands_the_failure_to_the_outer_round() -> None:
    inner = linear(t("b"), t("c"), name="inner", retry=Retry(times=1))
    outer = linear(t("a"), inner, name="outer", retry=Retry(times=1))
    flow = compile_flow(linear(outer, t("d")), {})
    failures = Counter[str]()

    def behaviour(inv: Invocation) -> Any:
        if inv.action == "execute" and inv.name == "c" and failures["c"] < 2:
            failures["c"] += 1
            raise ConnectionError("c down")
        return None

    run = drive(flow, behaviour)
    assert run.final is not None and run.final.state is ExecutionState.SUCCESS
    assert run.trace == [
        "execute:a#1", "execute:b#1", "execute:c#1",          # inner round 1 fails
        "revert:b#1", "execute:b#2", "execute:c#2",           # inner round 2 fails: exhausted
        "revert:b#2", "revert:a#1",                           # outer reverts everything
        "execute:a#2", "execute:b#3", "execute:c#3", "execute:d#1",
    ]
    # controllers count rounds like tasks count attempts: on, never reset (inner: 1, 2, then 3
    # in the outer's second round, where its own budget started again)
    assert run.saved["outer"].attempt == 2 and run.saved["inner"].attempt == 3


def test_a_failure_elsewhere_while_a_subflow_reverts_fails_the_whole_flow() -> None:
    sub = linear(t("s1"), t("s2"), name="sub", retry=Retry(times=5))
    flow = compile_flow(unordered(sub, t("other")), {})

    def behaviour(inv: Invocation) -> Any:
        if inv.action == "execute" and inv.name in ("s2", "other"):
            raise ValueError(inv.name)
        return None

    run = drive(flow, behaviour)
    assert run.final is not None and run.final.state is ExecutionState.REVERTED
    assert run.final.failure is not None and run.final.failure.message == "other"
    assert run.trace.count("revert:s1#1") == 1  # reverted once, not re-run
    assert "execute:s1#2" not in run.trace


def test_a_repeat_in_a_retried_subflow_is_rebuilt_with_new_attempts() -> None:
    body = task(lambda item: item * 10, name="each", provides="v")
    sub = linear(repeat(body, over="xs", provides="vs"), t("check"), name="sub",
                 retry=Retry(times=1))
    flow = compile_flow(linear(sub), {"xs": [1, 2]})
    calls = Counter[str]()

    def behaviour(inv: Invocation) -> Any:
        calls[inv.name] += 1
        if inv.name == "check" and calls["check"] == 1:
            raise ConnectionError("first round")
        if inv.action == "execute" and inv.name.endswith("/each"):
            return inv.kwargs["item"] * 10
        return None

    run = drive(flow, behaviour, inputs={"xs": [1, 2]})
    assert run.final is not None and run.final.state is ExecutionState.SUCCESS
    assert run.final.result == {"vs": [10, 20]}
    assert "execute:repeat-vs[0]/each#1" in run.trace
    assert "execute:repeat-vs[0]/each#2" in run.trace  # a new attempt (and key) in round 2


def test_cancel_during_a_retry_backoff_ignores_the_pending_retry() -> None:
    flow = compile_flow(linear(t("a"), t("b", retry=Retry(times=3, delay=60))), {})
    core = Core(flow, {})
    [_first] = core.decide(0).starts
    core.on_success("a", 1, None, 1)
    [_start] = core.decide(1).starts
    core.on_failure("b", 1, _failure(), 2)
    decision = core.decide(2)
    assert decision.wake_at == 62 and not decision.starts
    core.cancel(3)
    decision = core.decide(3)
    assert [s.name for s in decision.starts] == ["a"] and decision.starts[0].action == "revert"
    core.on_reverted("a", 4)
    decision = core.decide(4)
    assert decision.finished and decision.execution is not None
    assert decision.execution.state is ExecutionState.REVERTED
    assert decision.execution.failure is not None
    assert decision.execution.failure.type == "conductor.flow.errors.Cancelled"
    assert core.records["b"].state is AtomState.IGNORED


def test_a_failed_delegation_goes_through_the_retry_policy() -> None:
    flow = compile_flow(linear(t("ask", retry=Retry(times=1))), {})
    core = Core(flow, {})
    [_start] = core.decide(0).starts
    core.on_delegated("ask", 1, 0)
    assert core.decide(1).only_delegated
    core.on_delegation_done("ask", 1, 2, failure=_failure())
    [retry] = core.decide(2).starts
    assert (retry.name, retry.attempt) == ("ask", 2)


def _delegated_and_cancelled(flow: Any) -> tuple[Core, dict[str, AtomRecord]]:
    """a -> (ask: delegated | other: done), then cancelled; returns the saved records."""
    core = Core(flow, {})
    [_a] = core.decide(0).starts
    core.on_success("a", 1, None, 1)
    assert sorted(s.name for s in core.decide(1).starts) == ["ask", "other"]
    core.on_delegated("ask", 1, 2)
    core.on_success("other", 1, None, 2)
    assert core.decide(2).only_delegated
    saved = {r.name: AtomRecord(**vars(r)) for r in core.records.values()}
    for rec in core.cancel(3):
        saved[rec.name] = AtomRecord(**vars(rec))
    return core, saved


def test_cancel_ends_delegated_work_and_reverts_it_in_key_order() -> None:
    flow = compile_flow(linear(t("a"), unordered(t("ask"), t("other"))), {})
    core, saved = _delegated_and_cancelled(flow)
    ask = saved["ask"]
    assert ask.state is AtomState.REVERTING and ask.result is None
    assert ask.failure is not None and ask.failure.type == "conductor.flow.errors.Cancelled"
    decision = core.decide(3)
    assert not decision.only_delegated and decision.execution is not None
    assert decision.execution.failure is not None
    assert decision.execution.failure.type == "conductor.flow.errors.Cancelled"
    reverts = [s.name for s in decision.starts]
    while not decision.finished:
        [start] = decision.starts
        assert start.action == "revert"
        core.on_reverted(start.name, 4)
        decision = core.decide(4)
        reverts += [s.name for s in decision.starts]
    assert reverts[-1] == "a" and sorted(reverts) == ["a", "ask", "other"]
    assert decision.execution is not None
    assert decision.execution.state is ExecutionState.REVERTED
    assert core.on_delegation_done("ask", 1, 5, result="late") == [], "no longer waited for"


def test_a_cancelled_execution_reloaded_before_its_revert_reverts_the_ended_delegation(
        ) -> None:
    flow = compile_flow(linear(t("a"), unordered(t("ask"), t("other"))), {})
    core, saved = _delegated_and_cancelled(flow)
    run = drive(flow, lambda inv: None, atoms=saved, failure=core.failure, now=10)
    assert run.final is not None and run.final.state is ExecutionState.REVERTED
    assert sorted(run.trace) == ["revert:a#1", "revert:ask#1", "revert:other#1"]
    assert run.trace[-1] == "revert:a#1"


def test_an_attempt_that_delegates_after_a_cancel_is_ended_at_once() -> None:
    flow = compile_flow(linear(t("ask")), {})
    core = Core(flow, {})
    [_start] = core.decide(0).starts
    core.cancel(1)  # the attempt is still running: waited for
    assert core.busy == 1 and not core.decide(1).finished
    [ended] = core.on_delegated("ask", 1, 2)
    assert ended.state is AtomState.REVERTING
    [revert] = core.decide(2).starts
    assert (revert.name, revert.action, revert.result) == ("ask", "revert", None)


def test_cancel_of_a_failing_execution_stops_waiting_and_keeps_the_original_failure() -> None:
    flow = compile_flow(unordered(t("ask"), t("bad")), {})
    core = Core(flow, {})
    assert len(core.decide(0).starts) == 2
    core.on_delegated("ask", 1, 1)
    core.on_failure("bad", 1, _failure(), 1)
    assert core.decide(1).only_delegated, "a failing flow waits for its delegated work"
    core.cancel(2)
    decision = core.decide(2)
    assert [(s.name, s.action) for s in decision.starts] == [("ask", "revert")]
    core.on_reverted("ask", 3)
    decision = core.decide(3)
    assert decision.finished and decision.execution is not None
    assert decision.execution.failure is not None
    assert decision.execution.failure.type == "ConnectionError"


def test_a_finished_execution_reloads_as_finished() -> None:
    flow = compile_flow(linear(t("a", provides="x")), {})
    saved = {"a": AtomRecord("a", state=AtomState.SUCCESS, attempt=1, result=5)}
    decision = Core(flow, {}, saved).decide(0)
    assert decision.finished and decision.execution is not None
    assert decision.execution.result == {"x": 5}


def test_a_container_whose_children_all_succeeded_is_completed_on_load() -> None:
    flow = compile_flow(linear(linear(t("a"), name="sub", retry=Retry(times=1)), t("b")), {})
    saved = {
        "sub": AtomRecord("sub", kind="retry", state=AtomState.RUNNING, attempt=1),
        "a": AtomRecord("a", state=AtomState.SUCCESS, attempt=1),
    }
    decision = Core(flow, {}, saved).decide(0)
    assert [(r.name, r.state) for r in decision.records] == [
        ("sub", AtomState.SUCCESS), ("b", AtomState.RUNNING),
    ]
    assert [s.name for s in decision.starts] == ["b"]


def test_stopping_partway_and_reloading_the_saved_records_finishes_the_same() -> None:
    flow = compile_flow(linear(*[t(f"s{i}") for i in range(5)]), {})
    partial = drive(flow, lambda inv: None, stop_after=3)
    assert partial.saved["s2"].state is AtomState.SUCCESS
    assert partial.saved["s3"].state is AtomState.RUNNING  # dispatched, outcome not applied
    rest = drive(flow, lambda inv: None, atoms=partial.saved)
    assert rest.trace == ["execute:s3#1", "execute:s4#1"]


def _failure() -> Any:
    from conductor.engine import AttemptFailure  # noqa: PLC0415

    return AttemptFailure.from_exception(ConnectionError("down"))


def test_a_failure_before_a_retried_subflow_started_reverts_what_ran() -> None:
    """The sub-flow's tasks have no records yet (they are made when it starts): compensation
    and the final IGNORED marks pass over them."""
    sub = linear(t("s1"), t("s2"), name="sub", retry=Retry(times=1))
    flow = compile_flow(linear(t("a"), t("b"), sub), {})

    def behaviour(inv: Invocation) -> Any:
        if inv.action == "execute" and inv.name == "b":
            raise ValueError("b")
        return None

    run = drive(flow, behaviour)
    assert run.final is not None and run.final.state is ExecutionState.REVERTED
    assert run.trace == ["execute:a#1", "execute:b#1", "revert:a#1"]
    assert run.saved["sub"].state is AtomState.IGNORED and "s1" not in run.saved
