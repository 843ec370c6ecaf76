"""Compensation: reverting a failed flow, or a retry controller's sub-flow before its next round.

Reverts run one at a time in reverse key order (a task is reverted only after every task that
depended on it), once nothing of the scope is in flight. A revert failure stops compensation:
the execution ends FAILED, keeping its original failure.
"""

from __future__ import annotations

from conductor.engine.decisions import REVERT, AttemptFailure, Invocation
from conductor.engine.graph import TASK
from conductor.engine.state import FIRST_ATTEMPTS, ExecutionView, Revert
from persistence.records import (
    AtomRecord,
    AtomState,
    ExecutionChange,
    ExecutionState,
    Failure,
    Intention,
)


class Compensation(ExecutionView):
    """The revert rules of the core."""

    def _fail_flow(self, failure: Failure, changes: list[AtomRecord]) -> None:
        if self.failure is None:
            self.failure = failure
        self._begin_revert(None, retry=False)
        self._execution = ExecutionChange(ExecutionState.RUNNING, failure=self.failure)

    def _begin_revert(self, scope: str | None, *, retry: bool) -> None:
        reverting = self._s.reverting
        for inner in [r for r in reverting if r is not None and r != scope]:
            if self._in_scope(inner, scope):
                del reverting[inner]
        reverting[scope] = Revert(retry=retry)

    def _busy_in(self, scope: str | None) -> bool:
        s = self._s
        return any(self._in_scope(n, scope) for n in (*s.in_flight, *s.rerun))

    def _advance_reverts(self, now: float, changes: list[AtomRecord],
                         starts: list[Invocation]) -> None:
        for scope, revert in list(self._s.reverting.items()):
            if revert.current is not None or self._busy_in(scope):
                continue
            if revert.queue is None:
                revert.queue = sorted(
                    (n for n, spec in self.specs.items()
                     if spec.kind == TASK and n != scope and self._in_scope(n, scope)
                     and self.records[n].state in (AtomState.SUCCESS, AtomState.REVERTING)),
                    key=lambda n: self.specs[n].key,
                )
            while revert.queue and not self.revert_failed:
                name = revert.queue.pop()
                spec = self.specs[name]
                rec = self.records[name]
                rec.intention = Intention.REVERT
                changes.append(rec)
                assert spec.task is not None
                if not spec.task.has_revert:
                    rec.state = AtomState.REVERTED
                    rec.finished_at = now
                    continue
                rec.state = AtomState.REVERTING
                revert.current = name
                self._s.in_flight[name] = REVERT
                starts.append(Invocation(name, REVERT, rec.attempt, spec.task,
                                         self._kwargs(spec), result=rec.result))
                break
            else:
                self._finish_revert(scope, revert, now, changes)

    def _revert_done(self, name: str, now: float, failure: AttemptFailure | None
                     ) -> list[AtomRecord]:
        rec = self.records.get(name)
        if rec is None or self._s.in_flight.get(name) != REVERT:
            return []
        del self._s.in_flight[name]
        for revert in self._s.reverting.values():
            if revert.current == name:
                revert.current = None
        rec.finished_at = now
        if failure is None:
            rec.state = AtomState.REVERTED
        else:
            rec.state = AtomState.REVERT_FAILURE
            rec.failure = failure.failure
            self.revert_failed = True
            if self.failure is None:
                scope_failures = [self.records[s].failure for s in self._s.reverting
                                  if s is not None]
                self.failure = next((f for f in scope_failures if f), failure.failure)
            self._execution = ExecutionChange(ExecutionState.RUNNING, failure=self.failure)
        return [rec]

    def _finish_revert(self, scope: str | None, revert: Revert, now: float,
                       changes: list[AtomRecord]) -> None:
        if self.revert_failed or scope is None:
            if self._busy_in(None):
                return
            self._finish_failed(now, changes)
            return
        del self._s.reverting[scope]
        self._restart(scope, now, changes)

    def _finish_failed(self, now: float, changes: list[AtomRecord]) -> None:
        for name, spec in self.specs.items():
            rec = self.records[name]
            if rec.state is AtomState.PENDING:
                rec.state = AtomState.IGNORED
                rec.intention = Intention.IGNORE
                rec.not_before = None
                changes.append(rec)
            elif spec.kind != TASK and rec.state in (AtomState.RUNNING, AtomState.SUCCESS):
                rec.state = AtomState.REVERTED if not self.revert_failed else rec.state
                rec.intention = Intention.REVERT
                changes.append(rec)
        state = ExecutionState.FAILED if self.revert_failed else ExecutionState.REVERTED
        self.final = ExecutionChange(state, failure=self.failure)

    def _restart(self, scope: str, now: float, changes: list[AtomRecord]) -> None:
        """Run a reverted retry scope again: every atom in it back to PENDING."""
        s = self._s
        spec = self.specs[scope]
        rec = self.records[scope]
        assert spec.retry is not None
        used = rec.attempt - self.first_attempt(scope)
        delay = spec.retry.delay_for(used + 1, self.random)
        members = [n for n in self.specs if n != scope and self._in_scope(n, scope)]
        copies = [n for n in members if self._inside_repeat(n, scope)]
        first: dict[str, int] = {}
        for name in members:
            old = self.records[name]
            ran = old.state is not AtomState.PENDING and old.attempt > 0
            next_attempt = old.attempt + 1 if ran else old.attempt
            first[name] = max(next_attempt, 1)
            new = AtomRecord(name=name, kind=old.kind, attempt=next_attempt)
            self.records[name] = new
            changes.append(new)
            s.unmet.pop(name, None)
            s.rerun.discard(name)
        for name in copies:
            del self.specs[name]
        rec.attempt += 1
        rec.intention = Intention.EXECUTE
        rec.result = {FIRST_ATTEMPTS: first}
        changes.append(rec)
        s.open_children[scope] = 0
        for child in spec.children:
            s.open_children[scope] += 1
            s.unmet[child] = len(self.specs[child].preds)
            child_rec = self.records[child]
            child_rec.not_before = now + delay if delay > 0 else None
            if s.unmet[child] == 0:
                self._enqueue(child)
