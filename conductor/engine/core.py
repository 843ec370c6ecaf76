"""The passive core: (compiled flow, saved atom records, time) -> what to run next.

Pure: no threads, no I/O, no clock reads (time is passed in), no randomness of its own (the
jitter source is injected), no third-party package (tools/check_imports.py). The runner feeds
it attempt outcomes and saves the records it returns before acting on its decisions. Work per
completion is proportional to the atom's out-degree (in-degree counters and a ready queue),
never to the flow's size; only failure handling (starting a revert) walks the reverted scope
once.

One state machine: the events are the public methods (decide, on_success, on_failure,
on_delegated, on_delegation_done, on_reverted, on_revert_failed, cancel); every state change
they cause goes through `Atoms.move` or `ExecutionStatus.move`, checked against the tables of
conductor.engine.transitions. The pieces it is made of:
- `Atoms` (atoms.py): specs and records, the values they provide;
- `Schedule` (schedule.py): counters, ready queue, delayed retries, what is in flight;
- `ExecutionStatus` (status.py): the execution's state, failure and end;
- `Compensation` (compensation.py): the revert rules;
- this module: loading, starting, outcomes, retries and escalation.

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

import random as random_module
from collections.abc import Callable, Mapping
from typing import Any

from conductor.engine.atoms import Atoms
from conductor.engine.compensation import Compensation
from conductor.engine.decisions import Action, AttemptFailure, Decision, Invocation
from conductor.engine.graph import AtomKind, AtomSpec, CompiledFlow
from conductor.engine.instances import collect_sources
from conductor.engine.schedule import InFlight, Schedule
from conductor.engine.status import ExecutionStatus
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


class Core:
    """The state of one execution and the rules that move it forward.

    `state` is the execution's saved state (the runner passes it; RUNNING by default).
    """

    def __init__(
        self,
        flow: CompiledFlow,
        inputs: Mapping[str, Any],
        atoms: Mapping[str, AtomRecord] = {},
        failure: Failure | None = None,
        *,
        state: ExecutionState = ExecutionState.RUNNING,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.atoms = Atoms(flow, inputs, atoms)
        self.schedule = Schedule()
        self.status = ExecutionStatus(
            state, failure,
            revert_failed=any(r.state is AtomState.REVERT_FAILURE for r in atoms.values()),
            cancelled=failure is not None and failure.type == type_name(Cancelled))
        self.compensation = Compensation(self.atoms, self.schedule, self.status, random)
        self._random = random
        self._loaded: list[AtomRecord] = []  # transitions found while loading, saved first
        self._load(None, flow.graph.roots)
        if failure is not None:
            self.compensation.begin(None, retry=False)
        else:
            for name, spec in self.atoms.specs.items():
                rec = self.atoms.records.get(name)
                if (spec.kind is AtomKind.RETRY and rec is not None
                        and rec.intention is Intention.RETRY and rec.state is AtomState.RUNNING):
                    self.compensation.begin(name, retry=True)
        if self.schedule.open_children[None] == 0 and not self.compensation.reverting:
            self._finish_success()  # nothing left to run (an empty or finished flow)

    # -- what the runner and tests read ---------------------------------------------------
    @property
    def records(self) -> dict[str, AtomRecord]:
        return self.atoms.records

    @property
    def failure(self) -> Failure | None:
        return self.status.failure

    @property
    def final(self) -> ExecutionChange | None:
        """The execution's end, once decided."""
        return self.status.final

    @property
    def cancelled(self) -> bool:
        """Cancelled (now, or before this execution was saved): delegated work is not waited
        for (see cancel)."""
        return self.status.cancelled

    @property
    def delegated(self) -> bool:
        """Whether some attempt is delegated (waiting for a completion from outside)."""
        return self.schedule.delegated

    @property
    def busy(self) -> int:
        """How many attempts (executes and reverts) are in flight, delegated ones excluded."""
        return self.schedule.busy

    def first_attempt(self, name: str) -> int:
        """See Atoms.first_attempt."""
        return self.atoms.first_attempt(name)

    # -- loading saved state ------------------------------------------------------------
    def _load(self, parent: str | None, names: tuple[str, ...] | list[str]) -> None:
        atoms, schedule = self.atoms, self.schedule
        schedule.open_children[parent] = 0
        for name in names:
            spec = atoms.specs[name]
            rec = atoms.record(name)
            if spec.kind.container and rec.state in _STARTED:
                self._load(name, atoms.children(spec, expand=True))
                if rec.state is AtomState.RUNNING and schedule.open_children[name] == 0:
                    # every child succeeded but the container's own SUCCESS was not saved
                    self._mark_done(name, rec.started_at or 0.0)
                    self._loaded.append(rec)
            schedule.unmet[name] = sum(
                1 for p in spec.preds if atoms.records[p].state is not AtomState.SUCCESS
            )
            if rec.state is not AtomState.SUCCESS:
                schedule.open_children[parent] += 1
            if rec.state is AtomState.PENDING and schedule.unmet[name] == 0:
                self._enqueue(name)
            elif rec.state is AtomState.RUNNING and spec.kind is AtomKind.TASK:
                schedule.rerun.add(name)
                schedule.ready.append(name)
            elif rec.state is AtomState.DELEGATED:
                schedule.in_flight[name] = InFlight.DELEGATED

    # -- deciding -----------------------------------------------------------------------
    def decide(self, now: float, *, start: bool = True) -> Decision:
        """What to save and start now. Call after every batch of outcomes.

        With `start=False` (paused or stopping) nothing is started: only the pending
        execution-level change and the wake-up time are reported.
        """
        schedule, status = self.schedule, self.status
        changes, self._loaded = self._loaded, []
        starts: list[Invocation] = []
        while start and status.final is None:
            schedule.release_due(now)
            while schedule.ready and status.final is None:
                self._start(schedule.ready.popleft(), now, changes, starts)
            if self.compensation.reverting and status.final is None:
                self.compensation.advance(now, changes, starts)
            if not schedule.due(now):
                break
        going = status.final is None
        return Decision(
            records=changes,
            starts=starts,
            execution=status.take_unsaved(),
            wake_at=schedule.wake_at if going else None,
            finished=not going,
            only_delegated=(going and not schedule.busy and not starts and not schedule.delayed
                            and not schedule.ready and len(schedule.in_flight) > 0),
        )

    def _start(self, name: str, now: float, changes: list[AtomRecord],
               starts: list[Invocation]) -> None:
        atoms, schedule = self.atoms, self.schedule
        rec = atoms.records.get(name)
        spec = atoms.specs.get(name)
        if rec is None or spec is None:
            return
        if name in schedule.rerun:  # found RUNNING on load: its attempt starts again
            schedule.rerun.discard(name)
        elif (rec.state is not AtomState.PENDING or schedule.unmet.get(name, 1) != 0
              or self.compensation.frozen(name) or not self._parent_started(spec)):
            return
        if rec.not_before is not None and rec.not_before > now:
            schedule.enqueue(name, spec.key, rec.not_before)
            return
        atoms.move(rec, AtomState.RUNNING, Intention.EXECUTE)
        rec.attempt = rec.attempt if rec.attempt > 0 else 1
        rec.started_at = now
        rec.finished_at = None
        rec.not_before = None
        changes.append(rec)
        if spec.kind is AtomKind.TASK:
            assert spec.task is not None
            schedule.in_flight[name] = InFlight.EXECUTE
            starts.append(Invocation(name, Action.EXECUTE, rec.attempt, spec.task,
                                     atoms.kwargs(spec), timeout=spec.timeout))
            return
        if spec.kind is AtomKind.REPEAT:
            assert spec.over is not None
            items = atoms.value(spec.over)
            if not isinstance(items, list):
                kind = type(items)
                error = TypeError(
                    f"repeat {name!r}: {spec.over.describe()} must be a list, not "
                    f"{kind.__module__}.{kind.__qualname__}"
                )
                self._fail_atom(name, AttemptFailure.from_exception(error, retryable=False),
                                now, changes)
                return
        children = atoms.children(spec, expand=True)
        schedule.open_children[name] = 0
        for child in children:
            schedule.open_children[name] += 1
            schedule.unmet[child] = len(atoms.specs[child].preds)
            if schedule.unmet[child] == 0:
                self._enqueue(child)
        if not children:
            self._container_done(name, now, changes)

    def _parent_started(self, spec: AtomSpec) -> bool:
        return spec.parent is None or self.records[spec.parent].state is AtomState.RUNNING

    def _enqueue(self, name: str) -> None:
        self.schedule.enqueue(name, self.atoms.specs[name].key, self.records[name].not_before)

    # -- outcomes -----------------------------------------------------------------------
    def _current(self, name: str, attempt: int, *states: AtomState) -> AtomRecord | None:
        rec = self.records.get(name)
        if rec is None or rec.state not in states or rec.attempt != attempt:
            return None
        if self.schedule.in_flight.get(name) not in (InFlight.EXECUTE, InFlight.DELEGATED):
            return None
        return rec

    def on_success(self, name: str, attempt: int, result: Any, now: float) -> list[AtomRecord]:
        """Attempt `attempt` of `name` returned `result` (JSON, already checked). Returns the
        records to save. Outcomes of attempts that are no longer current are ignored."""
        rec = self._current(name, attempt, AtomState.RUNNING)
        return [] if rec is None else self._succeed(rec, result, now)

    def on_failure(self, name: str, attempt: int, failure: AttemptFailure, now: float
                   ) -> list[AtomRecord]:
        """Attempt `attempt` of `name` failed (raised, timed out, returned bad data)."""
        rec = self._current(name, attempt, AtomState.RUNNING, AtomState.DELEGATED)
        if rec is None:
            return []
        del self.schedule.in_flight[name]
        changes: list[AtomRecord] = []
        self._fail_atom(name, failure, now, changes)
        return changes

    def on_delegated(self, name: str, attempt: int, now: float) -> list[AtomRecord]:
        """The attempt handed its work to a third party; it completes from outside. In a
        cancelled execution the delegation is ended at once (see cancel)."""
        rec = self._current(name, attempt, AtomState.RUNNING)
        if rec is None:
            return []
        self.atoms.move(rec, AtomState.DELEGATED)
        self.schedule.in_flight[name] = InFlight.DELEGATED
        if self.status.cancelled:
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
        return self._succeed(rec, result, now)

    def on_reverted(self, name: str, now: float) -> list[AtomRecord]:
        """The revert of `name` finished."""
        return self.compensation.reverted(name, now, None)

    def on_revert_failed(self, name: str, failure: AttemptFailure, now: float
                         ) -> list[AtomRecord]:
        """The revert of `name` raised: compensation stops; the execution will end FAILED."""
        return self.compensation.reverted(name, now, failure)

    def cancel(self, now: float) -> list[AtomRecord]:
        """Stop starting tasks and revert what completed; ends REVERTED with a Cancelled
        failure (an execution already failing keeps its failure). Cancel means stop waiting:
        delegated attempts are ended at once (saved REVERTING with a Cancelled failure, so
        they are reverted in key order, their revert called with `result` None) instead of
        being waited for; attempts still running are waited for as usual."""
        if self.status.final is not None:
            return []
        changes: list[AtomRecord] = []
        self.status.cancelled = True
        if None not in self.compensation.reverting:
            error = Cancelled("the execution was cancelled")
            self.compensation.fail_flow(Failure(type_name(Cancelled), str(error)))
        for name, kind in list(self.schedule.in_flight.items()):
            if kind is InFlight.DELEGATED:
                self._end_delegation(name, now, changes)
        return changes

    def _end_delegation(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        """End a delegated attempt of a cancelled execution: it will be reverted (its revert,
        if any, may tell the third party to stop), unless compensation already stopped."""
        rec = self.records[name]
        del self.schedule.in_flight[name]
        rec.failure = Failure(
            type_name(Cancelled),
            f"task {name!r} attempt {rec.attempt}: the execution was cancelled while its "
            "delegated work was outstanding; its delegations no longer count")
        rec.finished_at = now
        if self.status.revert_failed:
            self.atoms.move(rec, AtomState.FAILURE)
        else:  # reverted in key order with the completed tasks
            self.atoms.move(rec, AtomState.REVERTING, Intention.REVERT)
            rec.result = None
        changes.append(rec)

    # -- forward progress ---------------------------------------------------------------
    def _succeed(self, rec: AtomRecord, result: Any, now: float) -> list[AtomRecord]:
        name = rec.name
        problem = _shape_problem(self.atoms.specs[name], result)
        if problem is not None:
            return self.on_failure(name, rec.attempt, AttemptFailure(
                Failure(type_name(ResultMismatch), problem), (type_name(ResultMismatch),),
                retryable=False), now)
        del self.schedule.in_flight[name]
        self.atoms.move(rec, AtomState.SUCCESS)
        rec.result = result
        rec.failure = None
        rec.finished_at = now
        changes = [rec]
        if not self.compensation.frozen(name):
            self._succeeded(name, now, changes)
        return changes

    def _succeeded(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        schedule = self.schedule
        spec = self.atoms.specs[name]
        for succ in spec.succs:
            schedule.unmet[succ] -= 1
            if schedule.unmet[succ] == 0 and self.records[succ].state is AtomState.PENDING:
                self._enqueue(succ)
        parent = spec.parent
        schedule.open_children[parent] -= 1
        if schedule.open_children[parent] == 0:
            if parent is None:
                self._finish_success()
            else:
                self._container_done(parent, now, changes)

    def _container_done(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        changes.append(self._mark_done(name, now))
        if not self.compensation.frozen(name):
            self._succeeded(name, now, changes)

    def _mark_done(self, name: str, now: float) -> AtomRecord:
        """A container whose children all succeeded: SUCCESS (a repeat collects results)."""
        atoms = self.atoms
        spec = atoms.specs[name]
        rec = atoms.records[name]
        if spec.kind is AtomKind.REPEAT:
            assert spec.over is not None
            items = atoms.value(spec.over)
            results = []
            for index in range(len(items)):
                found = {d: atoms.value(src) for d, src in collect_sources(spec, index)}
                results.append(next(iter(found.values())) if len(found) == 1 else found)
            rec.result = results
        atoms.move(rec, AtomState.SUCCESS)
        rec.finished_at = now
        return rec

    def _finish_success(self) -> None:
        self.status.move(ExecutionState.SUCCESS, result=self.atoms.flow_result())

    # -- failures -----------------------------------------------------------------------
    def _fail_atom(self, name: str, failure: AttemptFailure, now: float,
                   changes: list[AtomRecord]) -> None:
        atoms = self.atoms
        spec = atoms.specs[name]
        rec = atoms.records[name]
        rec.failure = failure.failure
        rec.finished_at = now
        changes.append(rec)
        if self.compensation.frozen(name):
            atoms.move(rec, AtomState.FAILURE)
            return
        policy = spec.retry
        if spec.kind is AtomKind.TASK and policy is not None and failure.retryable:
            used = rec.attempt - atoms.first_attempt(name)
            if used < policy.times and policy.matches(failure.kinds):
                atoms.move(rec, AtomState.PENDING, Intention.RETRY)
                rec.attempt += 1
                rec.not_before = now + policy.delay_for(used + 1, self._random)
                self._enqueue(name)
                return
        atoms.move(rec, AtomState.FAILURE)
        self._escalate(spec.parent, failure, changes)

    def _escalate(self, scope: str | None, failure: AttemptFailure,
                  changes: list[AtomRecord]) -> None:
        """Hand a failure up: the innermost retry controller with a round left reverts its
        sub-flow to run it again; past every one, the flow fails."""
        atoms = self.atoms
        while scope is not None:
            spec = atoms.specs[scope]
            rec = atoms.records[scope]
            if spec.kind is AtomKind.RETRY:
                assert spec.retry is not None
                used = rec.attempt - atoms.first_attempt(scope)
                rec.failure = failure.failure
                changes.append(rec)
                if (failure.retryable and used < spec.retry.times
                        and spec.retry.matches(failure.kinds)):
                    rec.intention = Intention.RETRY  # stays RUNNING while its scope reverts
                    self.compensation.begin(scope, retry=True)
                    return
                atoms.move(rec, AtomState.FAILURE)
            scope = spec.parent
        self.compensation.fail_flow(failure.failure)


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
