"""The transition tables of the engine, synchronously: an illegal change raises a clear error
and changes nothing, and the scenarios of the core make only changes the tables allow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conductor.engine import AttemptFailure, Invocation, compile_flow
from conductor.engine.atoms import Atoms
from conductor.engine.core import Core
from conductor.engine.graph import AtomKind
from conductor.engine.status import ExecutionStatus
from conductor.engine.transitions import (
    CONTAINER_TRANSITIONS,
    EXECUTION_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    Transition,
    check_atom,
    watch,
)
from conductor.flow import Retry, linear, repeat, task, unordered
from persistence import AtomRecord, AtomState, ExecutionState
from tests.engine.driver import drive


def _noop() -> None:
    return None


def _undo() -> None:
    return None


def t(name: str, **options: Any) -> Any:
    return task(_noop, name=name, revert=_undo, **options)


@pytest.fixture
def seen() -> Iterator[list[Transition]]:
    found: list[Transition] = []
    with watch(found.append):
        yield found


@pytest.mark.illegal_transitions
def test_an_illegal_atom_transition_raises_naming_the_atom_and_both_states() -> None:
    atoms = Atoms(compile_flow(linear(t("a")), {}), {}, {})
    rec = atoms.record("a")
    with pytest.raises(IllegalTransition) as caught:
        atoms.move(rec, AtomState.SUCCESS)
    assert str(caught.value) == (
        "engine bug: atom 'a' (task) cannot go from PENDING to SUCCESS (from PENDING it may go "
        "to: IGNORED, PENDING, RUNNING)")
    assert rec.state is AtomState.PENDING, "nothing changed"


@pytest.mark.illegal_transitions
def test_a_controller_has_its_own_table() -> None:
    atoms = Atoms(compile_flow(linear(linear(t("a"), name="sub", retry=Retry(times=1))), {}),
                  {}, {"sub": AtomRecord("sub", kind="retry", state=AtomState.RUNNING)})
    with pytest.raises(IllegalTransition, match=r"atom 'sub' \(retry\) cannot go from RUNNING "
                                                "to DELEGATED"):
        atoms.move(atoms.records["sub"], AtomState.DELEGATED)
    atoms.move(atoms.records["sub"], AtomState.SUCCESS)


@pytest.mark.illegal_transitions
def test_a_new_round_is_checked_too() -> None:
    atoms = Atoms(compile_flow(linear(t("a")), {}), {},
                  {"a": AtomRecord("a", state=AtomState.SUCCESS, attempt=1)})
    with pytest.raises(IllegalTransition, match="from SUCCESS to PENDING"):
        atoms.new_round("a")  # a succeeded task is reverted before its round starts again


@pytest.mark.illegal_transitions
def test_an_illegal_execution_transition_raises() -> None:
    status = ExecutionStatus(ExecutionState.SUCCESS, None, revert_failed=False, cancelled=False)
    with pytest.raises(IllegalTransition, match="an execution cannot go from SUCCESS to "
                                                "RUNNING"):
        status.move(ExecutionState.RUNNING)
    assert status.state is ExecutionState.SUCCESS
    assert status.move(ExecutionState.FAILED).state is ExecutionState.FAILED  # unsaveable result


def test_ends_and_failures_are_final_for_atoms() -> None:
    for table in (TASK_TRANSITIONS, CONTAINER_TRANSITIONS):
        sources = {before for before, _ in table}
        assert AtomState.REVERT_FAILURE not in sources and AtomState.IGNORED not in sources
    assert not {after for _, after in CONTAINER_TRANSITIONS} & {
        AtomState.DELEGATED, AtomState.REVERTING, AtomState.REVERT_FAILURE}
    ends = {ExecutionState.SUCCESS, ExecutionState.REVERTED, ExecutionState.FAILED}
    assert {(b, a) for b, a in EXECUTION_TRANSITIONS if b in ends} == {
        *((end, end) for end in ends), (ExecutionState.SUCCESS, ExecutionState.FAILED)}


@pytest.mark.illegal_transitions
def test_the_guard_checks_every_pair_against_its_table() -> None:
    for kind, table in ((AtomKind.TASK, TASK_TRANSITIONS),
                        (AtomKind.RETRY, CONTAINER_TRANSITIONS),
                        (AtomKind.REPEAT, CONTAINER_TRANSITIONS)):
        for before in AtomState:
            for after in AtomState:
                if (before, after) in table:
                    check_atom("x", kind, before, after)
                else:
                    with pytest.raises(IllegalTransition):
                        check_atom("x", kind, before, after)


def _fail(name: str, times: int = 1_000) -> Any:
    """Behaviour of a drive: executes of `name` fail the first `times` times."""
    failed: list[int] = []

    def behaviour(inv: Invocation) -> Any:
        if inv.action == "execute" and inv.name == name and len(failed) < times:
            failed.append(inv.attempt)
            raise ConnectionError(name)
        return None
    return behaviour


def test_scenarios_of_the_core_make_only_legal_transitions(seen: list[Transition]) -> None:
    """Retries, sub-flow rounds, repeats, failures, compensation, a failing revert, a cancel
    with delegated work, and a reload mid-run; each step the core takes is in the tables."""
    sub = linear(t("s1"), t("s2"), name="sub", retry=Retry(times=1))
    rounds = compile_flow(linear(t("a", retry=Retry(times=1)), sub, t("b")), {})
    drive(rounds, _fail("s2"))
    drive(rounds, _fail("b"))
    drive(rounds, _fail("a"))  # fails before the sub-flow started
    drive(rounds, _fail("a", times=1))
    each = task(lambda item: item, name="each", provides="v")
    looped = compile_flow(linear(repeat(each, over="xs", provides="vs"), t("z")), {"xs": [1]})
    drive(looped, lambda inv: inv.kwargs.get("item"), inputs={"xs": [1, 2]})
    drive(looped, lambda inv: None, inputs={"xs": "not a list"})

    def revert_fails(inv: Invocation) -> Any:
        if inv.action == "revert" or inv.name == "b":
            raise ValueError(inv.name)
        return None
    drive(compile_flow(linear(t("a"), t("b")), {}), revert_fails)
    partial = drive(rounds, lambda inv: None, stop_after=2)
    drive(rounds, lambda inv: None, atoms=partial.saved)

    core = Core(compile_flow(unordered(t("ask"), t("other")), {}), {})
    core.decide(0)
    core.on_delegated("ask", 1, 1)
    core.on_success("other", 1, None, 1)
    core.cancel(2)
    decision = core.decide(2)
    while not decision.finished:
        [revert] = decision.starts
        core.on_reverted(revert.name, 3)
        decision = core.decide(3)

    retried = Core(compile_flow(linear(t("ask", retry=Retry(times=1))), {}), {})
    retried.decide(0)
    retried.on_delegated("ask", 1, 0)
    retried.on_delegation_done("ask", 1, 1, failure=AttemptFailure.from_exception(
        ConnectionError("no")))
    retried.decide(1)
    retried.on_delegated("ask", 2, 2)
    retried.on_delegation_done("ask", 2, 3, result="yes")
    assert retried.decide(3).finished

    assert all(step.legal for step in seen)
    pairs = {(step.before, step.after) for step in seen if step.kind is AtomKind.TASK}
    assert pairs >= {(AtomState.RUNNING, AtomState.PENDING), (AtomState.FAILURE, AtomState.PENDING),
                     (AtomState.REVERTED, AtomState.PENDING),
                     (AtomState.REVERTING, AtomState.REVERT_FAILURE),
                     (AtomState.DELEGATED, AtomState.REVERTING),
                     (AtomState.DELEGATED, AtomState.PENDING),
                     (AtomState.DELEGATED, AtomState.SUCCESS),
                     (AtomState.RUNNING, AtomState.RUNNING)}
