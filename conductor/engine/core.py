"""The passive core: (compiled flow, saved atom records, time) -> what to run next.

Pure: no threads, no I/O, no clock reads (time is passed in), no randomness of its own (the
jitter source is injected). The runner feeds it attempt outcomes and saves the records it
returns before acting on its decisions. Work per completion is proportional to the atom's
out-degree (in-degree counters and a ready queue), never to the flow's size; only failure
handling (starting a revert) walks the reverted scope once.

Rules, in short (docs/engine.md has the full statement):
- An atom starts when all its predecessors succeeded and its container started; a container
  (retry or repeat controller) succeeds when all its children did.
- A failed attempt is retried by the task's own policy (PENDING, attempt+1, not_before);
  past it, the innermost enclosing retry controller that still allows a round reverts its
  sub-flow and runs it again; past every controller the flow fails and everything that
  succeeded is reverted. In-flight work of a reverted scope is waited for first.
- Reverts run one at a time in reverse key order (reverse topological order): a task is
  reverted only after every task that depended on it. A revert failure stops compensation and
  the execution ends FAILED; the original failure stays the execution's failure.
"""

from __future__ import annotations

import heapq
import random as random_module
from collections.abc import Callable, Mapping
from typing import Any

from conductor.engine.compensation import Compensation
from conductor.engine.decisions import EXECUTE, AttemptFailure, Decision, Invocation
from conductor.engine.graph import REPEAT, RETRY, TASK, AtomSpec, CompiledFlow
from conductor.engine.instances import collect_sources
from conductor.engine.state import DELEGATED
from conductor.flow.errors import Cancelled, ResultMismatch
from conductor.flow.retry import type_name
from persistence.records import (
    AtomRecord,
    AtomState,
    ExecutionChange,
    ExecutionState,
    Failure,
    Intention,
)

_STARTED = (AtomState.RUNNING, AtomState.SUCCESS, AtomState.FAILURE, AtomState.REVERTING,
            AtomState.REVERTED, AtomState.REVERT_FAILURE, AtomState.DELEGATED)


class Core(Compensation):
    """The state of one execution and the rules that move it forward."""

    def __init__(
        self,
        flow: CompiledFlow,
        inputs: Mapping[str, Any],
        atoms: Mapping[str, AtomRecord] = {},
        failure: Failure | None = None,
        *,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        super().__init__(flow, inputs, atoms, failure, random)
        self._loaded: list[AtomRecord] = []  # transitions found while loading, saved first
        self.cancelled = failure is not None and failure.type == type_name(Cancelled)
        """Cancelled (now, or before this execution was saved): delegated work is not waited
        for (see cancel)."""
        self._s.open_children[None] = 0
        self._load(None, flow.graph.roots)
        if failure is not None:
            self._begin_revert(None, retry=False)
        else:
            for name, spec in self.specs.items():
                rec = self.records.get(name)
                if (spec.kind == RETRY and rec is not None and rec.intention is Intention.RETRY
                        and rec.state is AtomState.RUNNING):
                    self._begin_revert(name, retry=True)
        if self._s.open_children[None] == 0 and not self._s.reverting:
            self._finish_success([])  # nothing left to run (an empty or finished flow)

    # -- loading saved state ------------------------------------------------------------------
    def _load(self, parent: str | None, names: tuple[str, ...] | list[str]) -> None:
        s = self._s
        s.open_children[parent] = 0
        for name in names:
            spec = self.specs[name]
            rec = self._record(name, spec.kind)
            if spec.kind != TASK and rec.state in _STARTED:
                self._load(name, self._children(spec, expand=True))
                if rec.state is AtomState.RUNNING and s.open_children[name] == 0:
                    # every child succeeded but the container's own SUCCESS was not saved
                    self._mark_done(name, rec.started_at or 0.0)
                    self._loaded.append(rec)
            s.unmet[name] = sum(
                1 for p in spec.preds if self.records[p].state is not AtomState.SUCCESS
            )
            if rec.state is not AtomState.SUCCESS:
                s.open_children[parent] += 1
            if rec.state is AtomState.PENDING and s.unmet[name] == 0:
                self._enqueue(name)
            elif rec.state is AtomState.RUNNING and spec.kind == TASK:
                s.rerun.add(name)
                s.ready.append(name)
            elif rec.state is AtomState.DELEGATED:
                s.in_flight[name] = DELEGATED

    # -- deciding ----------------------------------------------------------------------
    def decide(self, now: float, *, start: bool = True) -> Decision:
        """What to save and start now. Call after every batch of outcomes.

        With `start=False` (paused or stopping) nothing is started: only the pending
        execution-level change and the wake-up time are reported.
        """
        s = self._s
        changes, self._loaded = self._loaded, []
        starts: list[Invocation] = []
        while start and self.final is None:
            while s.delayed and s.delayed[0][0] <= now:
                s.ready.append(heapq.heappop(s.delayed)[2])
            while s.ready and self.final is None:
                name = s.ready.popleft()
                self._start(name, now, changes, starts)
            if s.reverting and self.final is None:
                self._advance_reverts(now, changes, starts)
            if not s.ready and not (s.delayed and s.delayed[0][0] <= now):
                break
        execution, self._execution = self._execution, None
        if self.final is not None:
            execution = self.final
        busy = [kind for kind in s.in_flight.values() if kind != DELEGATED]
        return Decision(
            records=changes,
            starts=starts,
            execution=execution,
            wake_at=s.delayed[0][0] if s.delayed and self.final is None else None,
            finished=self.final is not None,
            only_delegated=(self.final is None and not busy and not starts and not s.delayed
                            and not s.ready and len(s.in_flight) > 0),
        )

    @property
    def delegated(self) -> bool:
        """Whether some attempt is delegated (waiting for a completion from outside)."""
        return DELEGATED in self._s.in_flight.values()

    @property
    def busy(self) -> int:
        """How many attempts (executes and reverts) are in flight, delegated ones excluded."""
        return sum(1 for kind in self._s.in_flight.values() if kind != DELEGATED)

    def _start(self, name: str, now: float, changes: list[AtomRecord],
               starts: list[Invocation]) -> None:
        s = self._s
        rec = self.records.get(name)
        spec = self.specs.get(name)
        if rec is None or spec is None:
            return
        rerun = name in s.rerun
        if rerun:
            s.rerun.discard(name)
        elif (rec.state is not AtomState.PENDING or s.unmet.get(name, 1) != 0
              or self._frozen(name) or not self._parent_started(spec)):
            return
        if rec.not_before is not None and rec.not_before > now:
            heapq.heappush(s.delayed, (rec.not_before, spec.key, name))
            return
        rec.state = AtomState.RUNNING
        rec.intention = Intention.EXECUTE
        rec.attempt = rec.attempt if rec.attempt > 0 else 1
        rec.started_at = now
        rec.finished_at = None
        rec.not_before = None
        changes.append(rec)
        if spec.kind == TASK:
            assert spec.task is not None
            s.in_flight[name] = EXECUTE
            starts.append(Invocation(name, EXECUTE, rec.attempt, spec.task,
                                     self._kwargs(spec), timeout=spec.timeout))
            return
        if spec.kind == REPEAT:
            assert spec.over is not None
            items = self._value(spec.over)
            if not isinstance(items, list):
                kind = type(items)
                error = TypeError(
                    f"repeat {name!r}: {spec.over.describe()} must be a list, not "
                    f"{kind.__module__}.{kind.__qualname__}"
                )
                self._fail_atom(name, AttemptFailure.from_exception(error, retryable=False),
                                now, changes)
                return
        children = self._children(spec, expand=True)
        s.open_children[name] = 0
        for child in children:
            s.open_children[name] += 1
            s.unmet[child] = len(self.specs[child].preds)
            if s.unmet[child] == 0:
                self._enqueue(child)
        if not children:
            self._container_done(name, now, changes)

    def _parent_started(self, spec: AtomSpec) -> bool:
        return spec.parent is None or self.records[spec.parent].state is AtomState.RUNNING

    # -- outcomes -------------------------------------------------------------------------
    def _current(self, name: str, attempt: int, *states: AtomState) -> AtomRecord | None:
        rec = self.records.get(name)
        if rec is None or rec.state not in states or rec.attempt != attempt:
            return None
        if self._s.in_flight.get(name) not in (EXECUTE, DELEGATED):
            return None
        return rec

    def on_success(self, name: str, attempt: int, result: Any, now: float) -> list[AtomRecord]:
        """Attempt `attempt` of `name` returned `result` (JSON, already checked). Returns the
        records to save. Outcomes of attempts that are no longer current are ignored."""
        rec = self._current(name, attempt, AtomState.RUNNING)
        if rec is None:
            return []
        spec = self.specs[name]
        problem = _shape_problem(spec, result)
        if problem is not None:
            return self.on_failure(name, attempt, AttemptFailure(
                Failure(type_name(ResultMismatch), problem), (type_name(ResultMismatch),),
                retryable=False), now)
        del self._s.in_flight[name]
        rec.state = AtomState.SUCCESS
        rec.result = result
        rec.failure = None
        rec.finished_at = now
        changes = [rec]
        if not self._frozen(name):
            self._succeeded(name, now, changes)
        return changes

    def on_failure(self, name: str, attempt: int, failure: AttemptFailure, now: float
                   ) -> list[AtomRecord]:
        """Attempt `attempt` of `name` failed (raised, timed out, returned bad data)."""
        rec = self._current(name, attempt, AtomState.RUNNING, AtomState.DELEGATED)
        if rec is None:
            return []
        del self._s.in_flight[name]
        changes: list[AtomRecord] = []
        self._fail_atom(name, failure, now, changes)
        return changes

    def on_delegated(self, name: str, attempt: int, now: float) -> list[AtomRecord]:
        """The attempt handed its work to a third party; it completes from outside. In a
        cancelled execution the delegation is ended at once (see cancel)."""
        rec = self._current(name, attempt, AtomState.RUNNING)
        if rec is None:
            return []
        rec.state = AtomState.DELEGATED
        self._s.in_flight[name] = DELEGATED
        if self.cancelled:
            changes: list[AtomRecord] = []
            self._end_delegation(name, now, changes)
            return changes
        return [rec]

    def on_delegation_done(self, name: str, attempt: int, now: float, *, result: Any = None,
                           failure: AttemptFailure | None = None) -> list[AtomRecord]:
        """A delegated attempt was completed from outside, with a result or a failure."""
        rec = self._current(name, attempt, AtomState.DELEGATED)
        if rec is None:
            return []
        if failure is not None:
            return self.on_failure(name, attempt, failure, now)
        rec.state = AtomState.RUNNING
        return self.on_success(name, attempt, result, now)

    def on_reverted(self, name: str, now: float) -> list[AtomRecord]:
        """The revert of `name` finished."""
        return self._revert_done(name, now, None)

    def on_revert_failed(self, name: str, failure: AttemptFailure, now: float
                         ) -> list[AtomRecord]:
        """The revert of `name` raised: compensation stops; the execution will end FAILED."""
        return self._revert_done(name, now, failure)

    def cancel(self, now: float) -> list[AtomRecord]:
        """Stop starting tasks and revert what completed; ends REVERTED with a Cancelled
        failure (an execution already failing keeps its failure). Cancel means stop waiting:
        delegated attempts are ended at once (saved REVERTING with a Cancelled failure, so
        they are reverted in key order, their revert called with `result` None) instead of
        being waited for; attempts still running are waited for as usual."""
        if self.final is not None:
            return []
        changes: list[AtomRecord] = []
        self.cancelled = True
        if None not in self._s.reverting:
            error = Cancelled("the execution was cancelled")
            self._fail_flow(Failure(type_name(Cancelled), str(error)), changes)
        for name, kind in list(self._s.in_flight.items()):
            if kind == DELEGATED:
                self._end_delegation(name, now, changes)
        return changes

    def _end_delegation(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        """End a delegated attempt of a cancelled execution: it will be reverted (its revert,
        if any, may tell the third party to stop), unless compensation already stopped."""
        rec = self.records[name]
        del self._s.in_flight[name]
        rec.failure = Failure(
            type_name(Cancelled),
            f"task {name!r} attempt {rec.attempt}: the execution was cancelled while its "
            "delegated work was outstanding; its delegations no longer count")
        rec.finished_at = now
        if self.revert_failed:
            rec.state = AtomState.FAILURE
        else:
            rec.state = AtomState.REVERTING  # reverted in key order with the completed tasks
            rec.intention = Intention.REVERT
            rec.result = None
        changes.append(rec)

    # -- forward progress ------------------------------------------------------------------
    def _succeeded(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        s = self._s
        spec = self.specs[name]
        for succ in spec.succs:
            s.unmet[succ] -= 1
            if s.unmet[succ] == 0 and self.records[succ].state is AtomState.PENDING:
                self._enqueue(succ)
        parent = spec.parent
        s.open_children[parent] -= 1
        if s.open_children[parent] == 0:
            if parent is None:
                self._finish_success(changes)
            else:
                self._container_done(parent, now, changes)

    def _container_done(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        changes.append(self._mark_done(name, now))
        if not self._frozen(name):
            self._succeeded(name, now, changes)

    def _mark_done(self, name: str, now: float) -> AtomRecord:
        """A container whose children all succeeded: SUCCESS (a repeat collects results)."""
        spec = self.specs[name]
        rec = self.records[name]
        if spec.kind == REPEAT:
            assert spec.over is not None
            items = self._value(spec.over)
            results = []
            for index in range(len(items)):
                found = {d: self._value(src) for d, src in collect_sources(spec, index)}
                results.append(next(iter(found.values())) if len(found) == 1 else found)
            rec.result = results
        rec.state = AtomState.SUCCESS
        rec.finished_at = now
        return rec

    def _finish_success(self, changes: list[AtomRecord]) -> None:
        self.final = ExecutionChange(ExecutionState.SUCCESS, result=self.flow_result())

    # -- failures --------------------------------------------------------------------------
    def _fail_atom(self, name: str, failure: AttemptFailure, now: float,
                   changes: list[AtomRecord]) -> None:
        spec = self.specs[name]
        rec = self.records[name]
        rec.failure = failure.failure
        rec.finished_at = now
        changes.append(rec)
        if self._frozen(name):
            rec.state = AtomState.FAILURE
            return
        policy = spec.retry
        if spec.kind == TASK and policy is not None and failure.retryable:
            used = rec.attempt - self.first_attempt(name)
            if used < policy.times and policy.matches(failure.kinds):
                rec.state = AtomState.PENDING
                rec.intention = Intention.RETRY
                rec.attempt += 1
                rec.not_before = now + policy.delay_for(used + 1, self.random)
                self._enqueue(name)
                return
        rec.state = AtomState.FAILURE
        self._escalate(spec.parent, failure, changes)

    def _escalate(self, scope: str | None, failure: AttemptFailure,
                  changes: list[AtomRecord]) -> None:
        while scope is not None:
            spec = self.specs[scope]
            rec = self.records[scope]
            if spec.kind == RETRY:
                assert spec.retry is not None
                used = rec.attempt - self.first_attempt(scope)
                rec.failure = failure.failure
                changes.append(rec)
                if (failure.retryable and used < spec.retry.times
                        and spec.retry.matches(failure.kinds)):
                    rec.intention = Intention.RETRY
                    self._begin_revert(scope, retry=True)
                    return
                rec.state = AtomState.FAILURE
            scope = spec.parent
        self._fail_flow(failure.failure, changes)

def _shape_problem(spec: AtomSpec, result: Any) -> str | None:
    """Why `result` cannot be unpacked into the names the task provides, or None."""
    if not spec.unpack:
        return None
    names = spec.provides
    if isinstance(result, dict):
        missing = [n for n in names if n not in result]
        if missing:
            return (f"task {spec.name!r} provides {list(names)} but its result (a dict) lacks "
                    f"{missing}")
        return None
    if isinstance(result, (list, tuple)):
        if len(result) != len(names):
            return (f"task {spec.name!r} provides {list(names)} but returned {len(result)} "
                    "values")
        return None
    return (f"task {spec.name!r} provides {list(names)} but returned "
            f"{type(result).__name__}, not a list/tuple or dict")
