"""The forward rules of the passive core: starting atoms, a success moving its dependants and
its container on, and a failure retried by its task's policy, by an enclosing sub-flow, or
failing the flow (compensation.py holds the rules that go backwards)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conductor.engine.atoms import Atoms
from conductor.engine.compensation import Compensation
from conductor.engine.decisions import Action, AttemptFailure, Invocation
from conductor.engine.graph import AtomKind, AtomSpec
from conductor.engine.instances import collect_sources
from conductor.engine.schedule import InFlight, Schedule
from conductor.engine.status import ExecutionStatus
from conductor.flow.errors import ResultMismatch
from conductor.flow.retry import type_name
from persistence.records import AtomRecord, AtomState, ExecutionState, Failure, Intention


class Progress:
    """Moves an execution forward, over the core's atoms, schedule, status and compensation."""

    def __init__(self, atoms: Atoms, schedule: Schedule, status: ExecutionStatus,
                 compensation: Compensation, random: Callable[[], float]) -> None:
        self._atoms = atoms
        self._schedule = schedule
        self._status = status
        self._compensation = compensation
        self._random = random

    def enqueue(self, name: str) -> None:
        """`name` may start (now, or at its not_before)."""
        self._schedule.enqueue(name, self._atoms.specs[name].key,
                               self._atoms.records[name].not_before)

    # -- starting -----------------------------------------------------------------------
    def start(self, name: str, now: float, changes: list[AtomRecord],
              starts: list[Invocation]) -> None:
        """Start `name` if it still may: a task becomes an invocation, a container opens its
        children."""
        atoms, schedule = self._atoms, self._schedule
        rec = atoms.records.get(name)
        spec = atoms.specs.get(name)
        if rec is None or spec is None:
            return
        if name in schedule.rerun:  # found RUNNING on load: its attempt starts again
            schedule.rerun.discard(name)
        elif (rec.state is not AtomState.PENDING or schedule.unmet.get(name, 1) != 0
              or self._compensation.frozen(name) or not self._parent_started(spec)):
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
                self.fail(name, AttemptFailure.from_exception(error, retryable=False),
                          now, changes)
                return
        children = atoms.children(spec, expand=True)
        schedule.open_children[name] = 0
        for child in children:
            schedule.open_children[name] += 1
            schedule.unmet[child] = len(atoms.specs[child].preds)
            if schedule.unmet[child] == 0:
                self.enqueue(child)
        if not children:
            self._container_done(name, now, changes)

    def _parent_started(self, spec: AtomSpec) -> bool:
        return (spec.parent is None
                or self._atoms.records[spec.parent].state is AtomState.RUNNING)

    # -- successes ----------------------------------------------------------------------
    def succeed(self, rec: AtomRecord, result: Any, now: float) -> list[AtomRecord]:
        """The current attempt of `rec` (RUNNING or DELEGATED) returned `result`: SUCCESS,
        unless the result does not fit what the task provides (a failure, never retried)."""
        name = rec.name
        del self._schedule.in_flight[name]
        changes: list[AtomRecord] = []
        problem = _shape_problem(self._atoms.specs[name], result)
        if problem is not None:
            self.fail(name, AttemptFailure(Failure(type_name(ResultMismatch), problem),
                                           (type_name(ResultMismatch),), retryable=False),
                      now, changes)
            return changes
        self._atoms.move(rec, AtomState.SUCCESS)
        rec.result = result
        rec.failure = None
        rec.finished_at = now
        changes.append(rec)
        if not self._compensation.frozen(name):
            self._succeeded(name, now, changes)
        return changes

    def _succeeded(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        schedule = self._schedule
        spec = self._atoms.specs[name]
        for succ in spec.succs:
            schedule.unmet[succ] -= 1
            if (schedule.unmet[succ] == 0
                    and self._atoms.records[succ].state is AtomState.PENDING):
                self.enqueue(succ)
        parent = spec.parent
        schedule.open_children[parent] -= 1
        if schedule.open_children[parent] == 0:
            if parent is None:
                self.finish_success()
            else:
                self._container_done(parent, now, changes)

    def _container_done(self, name: str, now: float, changes: list[AtomRecord]) -> None:
        changes.append(self.mark_done(name, now))
        if not self._compensation.frozen(name):
            self._succeeded(name, now, changes)

    def mark_done(self, name: str, now: float) -> AtomRecord:
        """A container whose children all succeeded: SUCCESS (a repeat collects results)."""
        atoms = self._atoms
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

    def finish_success(self) -> None:
        self._status.move(ExecutionState.SUCCESS, result=self._atoms.flow_result())

    # -- failures -----------------------------------------------------------------------
    def fail(self, name: str, failure: AttemptFailure, now: float,
             changes: list[AtomRecord]) -> None:
        """An attempt of `name` failed (or a repeat got bad items): retried by its task's
        policy, else FAILURE handed up to its enclosing sub-flows."""
        atoms = self._atoms
        spec = atoms.specs[name]
        rec = atoms.records[name]
        rec.failure = failure.failure
        rec.finished_at = now
        changes.append(rec)
        if self._compensation.frozen(name):
            atoms.move(rec, AtomState.FAILURE)
            return
        policy = spec.retry
        if spec.kind is AtomKind.TASK and policy is not None and failure.retryable:
            used = rec.attempt - atoms.first_attempt(name)
            if used < policy.times and policy.matches(failure.kinds):
                atoms.move(rec, AtomState.PENDING, Intention.RETRY)
                rec.attempt += 1
                rec.not_before = now + policy.delay_for(used + 1, self._random)
                self.enqueue(name)
                return
        atoms.move(rec, AtomState.FAILURE)
        self._escalate(spec.parent, failure, changes)

    def _escalate(self, scope: str | None, failure: AttemptFailure,
                  changes: list[AtomRecord]) -> None:
        """Hand a failure up: the innermost retry controller with a round left reverts its
        sub-flow to run it again; past every one, the flow fails."""
        atoms = self._atoms
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
                    self._compensation.begin(scope, retry=True)
                    return
                atoms.move(rec, AtomState.FAILURE)
            scope = spec.parent
        self._compensation.fail_flow(failure.failure)


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
