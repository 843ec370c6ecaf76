"""Every state change the engine makes, as explicit tables, checked at each change.

The passive core changes an atom's state only through `Atoms.move` and the execution's only
through `ExecutionStatus.move`; both check the change here. A change missing from the tables is
an engine bug: it raises IllegalTransition naming the atom (or execution), the state it was in
and the state it was asked to take, before anything is changed or saved.

Tasks and controllers (retry and repeat atoms) have separate tables: a controller never runs,
delegates nor reverts anything itself. Self-loops are listed only where the same state is
entered again on purpose (an attempt or a revert started again after a resume).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from conductor.engine.graph import AtomKind
from persistence.records import AtomState, ExecutionState

A = AtomState
E = ExecutionState
_ROUND = "its sub-flow starts a new round"

TASK_TRANSITIONS: Mapping[tuple[AtomState, AtomState], str] = {
    (A.PENDING, A.RUNNING): "started (RUNNING is saved before the attempt is dispatched)",
    (A.PENDING, A.PENDING): _ROUND + " before it ran",
    (A.PENDING, A.IGNORED): "the flow ended before it ran",
    (A.RUNNING, A.RUNNING): "found RUNNING when the execution resumed: started again",
    (A.RUNNING, A.SUCCESS): "its attempt returned a result",
    (A.RUNNING, A.PENDING): "its attempt failed and its retry policy runs another",
    (A.RUNNING, A.FAILURE): "its attempt failed for good",
    (A.RUNNING, A.DELEGATED): "its attempt handed the work to a third party",
    (A.DELEGATED, A.SUCCESS): "completed from outside with a result (or its timer passed)",
    (A.DELEGATED, A.PENDING): "completed with an error (or past its deadline); retried",
    (A.DELEGATED, A.FAILURE): "completed with an error (or past its deadline) for good",
    (A.DELEGATED, A.REVERTING): "the execution was cancelled: its delegation ended",
    (A.SUCCESS, A.REVERTING): "its revert started",
    (A.SUCCESS, A.REVERTED): "reverted: its task has no revert",
    (A.REVERTING, A.REVERTING): "its revert started again (after a resume or a cancel)",
    (A.REVERTING, A.REVERTED): "its revert returned (or its task has none)",
    (A.REVERTING, A.REVERT_FAILURE): "its revert raised: compensation stops",
    (A.FAILURE, A.PENDING): _ROUND,
    (A.REVERTED, A.PENDING): _ROUND,
}
"""(from, to) -> why a task takes that step."""

CONTAINER_TRANSITIONS: Mapping[tuple[AtomState, AtomState], str] = {
    (A.PENDING, A.RUNNING): "started: its children may start",
    (A.PENDING, A.PENDING): "an enclosing sub-flow starts a new round before it started",
    (A.PENDING, A.IGNORED): "the flow ended before it started",
    (A.RUNNING, A.SUCCESS): "every child succeeded (a repeat collects their results)",
    (A.RUNNING, A.FAILURE): "a failure inside it is not retried by it, or bad repeat items",
    (A.RUNNING, A.PENDING): "an enclosing sub-flow starts a new round",
    (A.RUNNING, A.REVERTED): "the flow failed and was compensated",
    (A.SUCCESS, A.PENDING): "an enclosing sub-flow starts a new round",
    (A.SUCCESS, A.REVERTED): "the flow failed and was compensated",
    (A.FAILURE, A.PENDING): "an enclosing sub-flow starts a new round",
}
"""(from, to) -> why a retry or repeat controller takes that step."""

_ENDS = (E.SUCCESS, E.REVERTED, E.FAILED)
_RESUMABLE = (E.PENDING, E.RUNNING, E.SUSPENDED, E.PARKED)

EXECUTION_TRANSITIONS: Mapping[tuple[ExecutionState, ExecutionState], str] = {
    **{(state, E.RUNNING): "an owner runs it (a failure noted keeps it RUNNING)"
       for state in _RESUMABLE},
    (E.RUNNING, E.SUSPENDED): "stopped cleanly (shutdown, stop request): resumable",
    (E.RUNNING, E.PARKED): "only delegated work is left: no conductor needs to hold it",
    (E.RUNNING, E.SUCCESS): "every atom succeeded",
    (E.RUNNING, E.REVERTED): "failed (or cancelled) and compensated",
    (E.RUNNING, E.FAILED): "failed, and a revert failed too",
    **{(state, E.SUCCESS): "nothing left to run when loaded (PENDING: an empty flow)"
       for state in (E.PENDING, E.SUSPENDED, E.PARKED)},
    **{(end, end): "run again after its end was saved: it ends the same" for end in _ENDS},
    (E.SUCCESS, E.FAILED): "its result cannot be saved (not JSON)",
}
"""(from, to) -> why an execution takes that step."""


class IllegalTransition(RuntimeError):
    """The engine tried a state change its tables do not allow: a bug in the engine."""


@dataclass(frozen=True)
class Transition:
    """One state change the engine asked for (`atom` None: the execution's own state)."""

    atom: str | None
    kind: AtomKind | None
    before: AtomState | ExecutionState
    after: AtomState | ExecutionState
    legal: bool


_watchers: list[Callable[[Transition], None]] = []


def check_atom(name: str, kind: AtomKind, before: AtomState, after: AtomState) -> None:
    """Raise IllegalTransition unless an atom of `kind` may go from `before` to `after`."""
    table = CONTAINER_TRANSITIONS if kind.container else TASK_TRANSITIONS
    legal = (before, after) in table
    _tell(Transition(name, kind, before, after, legal))
    if not legal:
        allowed = sorted(to.value for (source, to) in table if source is before)
        raise IllegalTransition(
            f"engine bug: atom {name!r} ({kind.value}) cannot go from {before.value} to "
            f"{after.value} (from {before.value} it may go to: {', '.join(allowed) or 'nothing'})")


def check_execution(before: ExecutionState, after: ExecutionState) -> None:
    """Raise IllegalTransition unless an execution may go from `before` to `after`."""
    legal = (before, after) in EXECUTION_TRANSITIONS
    _tell(Transition(None, None, before, after, legal))
    if not legal:
        raise IllegalTransition(f"engine bug: an execution cannot go from {before.value} to "
                                f"{after.value}")


@contextlib.contextmanager
def watch(callback: Callable[[Transition], None]) -> Iterator[None]:
    """Call `callback` with every transition checked while inside, legal or not (tests use it
    to prove the engine only makes the transitions of the tables, even where an error would be
    caught and logged)."""
    _watchers.append(callback)
    try:
        yield
    finally:
        _watchers.remove(callback)


def _tell(transition: Transition) -> None:
    for callback in list(_watchers):
        callback(transition)
