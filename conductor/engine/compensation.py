"""Compensation: reverting a failed flow, or a retry controller's sub-flow before its next round.

Reverts run one at a time in reverse key order (a task is reverted only after every task that
depended on it), once nothing of the scope is in flight. A revert failure stops compensation:
the execution ends FAILED, keeping its original failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conductor.engine.atoms import FIRST_ATTEMPTS, Atoms
from conductor.engine.decisions import Action, AttemptFailure, Invocation
from conductor.engine.graph import AtomKind
from conductor.engine.schedule import InFlight, Schedule
from conductor.engine.status import ExecutionStatus
from persistence.records import AtomRecord, AtomState, ExecutionState, Failure, Intention


@dataclass
class ScopeRevert:
    """A scope being reverted: the whole flow (scope None, to fail) or a retry controller's
    sub-flow (to run it again)."""

    retry: bool
    queue: list[str] | None = None  # atoms still to revert, ascending key (pop from the end)
    current: str | None = None  # the atom whose revert is in flight


class Compensation:
    """The revert rules of the passive core, over the core's atoms, schedule and status."""

    def __init__(self, atoms: Atoms, schedule: Schedule, status: ExecutionStatus,
                 random: Callable[[], float]) -> None:
        self._atoms = atoms
        self._schedule = schedule
        self._status = status
        self._random = random
        self.reverting: dict[str | None, ScopeRevert] = {}

    def frozen(self, name: str) -> bool:
        """Whether `name` is inside a scope being reverted (it neither starts nor moves on)."""
        if not self.reverting:
            return False
        if None in self.reverting or self._status.revert_failed:
            return True
        specs = self._atoms.specs
        parent = specs[name].parent
        while parent is not None:
            if parent in self.reverting:
                return True
            parent = specs[parent].parent
        return False

    def fail_flow(self, failure: Failure) -> None:
        """The flow fails: note the failure and revert everything."""
        self._status.note_failure(failure)
        self.begin(None, retry=False)

    def begin(self, scope: str | None, *, retry: bool) -> None:
        """Start reverting `scope` (None: the flow); it takes over scopes inside it."""
        for inner in [r for r in self.reverting if r is not None and r != scope]:
            if self._atoms.in_scope(inner, scope):
                del self.reverting[inner]
        self.reverting[scope] = ScopeRevert(retry=retry)

    def busy_in(self, scope: str | None) -> bool:
        schedule = self._schedule
        return any(self._atoms.in_scope(n, scope)
                   for n in (*schedule.in_flight, *schedule.rerun))

    def advance(self, now: float, changes: list[AtomRecord], starts: list[Invocation]) -> None:
        """Start the next revert of every scope that has nothing in flight; finish a scope
        with nothing left to revert."""
        atoms = self._atoms
        for scope, revert in list(self.reverting.items()):
            if self._status.final is not None:
                return
            if revert.current is not None or self.busy_in(scope):
                continue
            if revert.queue is None:
                revert.queue = sorted(
                    (n for n, spec in atoms.specs.items()
                     if spec.kind is AtomKind.TASK and n != scope and atoms.in_scope(n, scope)
                     and atoms.state(n) in (AtomState.SUCCESS, AtomState.REVERTING)),
                    key=lambda n: atoms.specs[n].key,
                )
            while revert.queue and not self._status.revert_failed:
                name = revert.queue.pop()
                spec = atoms.specs[name]
                rec = atoms.records[name]
                changes.append(rec)
                assert spec.task is not None
                if not spec.task.has_revert:
                    atoms.move(rec, AtomState.REVERTED, Intention.REVERT)
                    rec.finished_at = now
                    continue
                atoms.move(rec, AtomState.REVERTING, Intention.REVERT)
                revert.current = name
                self._schedule.in_flight[name] = InFlight.REVERT
                starts.append(Invocation(name, Action.REVERT, rec.attempt, spec.task,
                                         atoms.kwargs(spec), result=rec.result))
                break
            else:
                self._finish(scope, now, changes)

    def reverted(self, name: str, now: float, failure: AttemptFailure | None
                 ) -> list[AtomRecord]:
        """The revert of `name` returned (`failure` None) or raised."""
        rec = self._atoms.records.get(name)
        if rec is None or self._schedule.in_flight.get(name) is not InFlight.REVERT:
            return []
        del self._schedule.in_flight[name]
        for revert in self.reverting.values():
            if revert.current == name:
                revert.current = None
        rec.finished_at = now
        if failure is None:
            self._atoms.move(rec, AtomState.REVERTED)
            return [rec]
        self._atoms.move(rec, AtomState.REVERT_FAILURE)
        rec.failure = failure.failure
        self._status.revert_failed = True
        # The execution keeps its first failure; a scope being retried lends its own.
        scope_failures = [self._atoms.records[s].failure for s in self.reverting
                          if s is not None]
        self._status.note_failure(next((f for f in scope_failures if f), failure.failure))
        return [rec]

    def _finish(self, scope: str | None, now: float, changes: list[AtomRecord]) -> None:
        if self._status.revert_failed or scope is None:
            if not self.busy_in(None):
                self._finish_failed(changes)
            return
        del self.reverting[scope]
        self._new_round(scope, now, changes)

    def _finish_failed(self, changes: list[AtomRecord]) -> None:
        """Everything is reverted (or a revert failed): what never ran is IGNORED, containers
        are REVERTED (left as they were if compensation stopped), and the execution ends."""
        atoms = self._atoms
        for name, spec in atoms.specs.items():
            rec = atoms.records.get(name)
            if rec is None:  # inside a container that never started: nothing of it was saved
                continue
            if rec.state is AtomState.PENDING:
                atoms.move(rec, AtomState.IGNORED, Intention.IGNORE)
                rec.not_before = None
                changes.append(rec)
            elif spec.kind.container and rec.state in (AtomState.RUNNING, AtomState.SUCCESS):
                if self._status.revert_failed:
                    rec.intention = Intention.REVERT
                else:
                    atoms.move(rec, AtomState.REVERTED, Intention.REVERT)
                changes.append(rec)
        self._status.move(ExecutionState.FAILED if self._status.revert_failed
                          else ExecutionState.REVERTED)

    def _new_round(self, scope: str, now: float, changes: list[AtomRecord]) -> None:
        """Run a reverted retry scope again: every atom in it back to PENDING."""
        atoms, schedule = self._atoms, self._schedule
        spec = atoms.specs[scope]
        rec = atoms.records[scope]
        assert spec.retry is not None
        used = rec.attempt - atoms.first_attempt(scope)
        delay = spec.retry.delay_for(used + 1, self._random)
        members = [n for n in atoms.specs if n != scope and atoms.in_scope(n, scope)]
        copies = [n for n in members if atoms.inside_repeat(n, scope)]
        first: dict[str, int] = {}
        for name in members:
            new = atoms.new_round(name)
            first[name] = max(new.attempt, 1)
            changes.append(new)
            schedule.unmet.pop(name, None)
            schedule.rerun.discard(name)
        for name in copies:
            del atoms.specs[name]
        rec.attempt += 1
        rec.intention = Intention.EXECUTE
        rec.result = {FIRST_ATTEMPTS: first}
        changes.append(rec)
        schedule.open_children[scope] = 0
        for child in spec.children:
            schedule.open_children[scope] += 1
            schedule.unmet[child] = len(atoms.specs[child].preds)
            child_rec = atoms.records[child]
            child_rec.not_before = now + delay if delay > 0 else None
            if schedule.unmet[child] == 0:
                schedule.enqueue(child, atoms.specs[child].key, child_rec.not_before)
