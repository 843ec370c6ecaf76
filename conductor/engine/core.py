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
- `Progress` (progress.py): the forward rules: starts, successes, retries, escalation;
- `Compensation` (compensation.py): the rules going backwards: reverts and new rounds;
- this module: loading saved records, deciding, and the events themselves.

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
from conductor.engine.decisions import AttemptFailure, Decision, Invocation
from conductor.engine.graph import AtomKind, CompiledFlow
from conductor.engine.progress import Progress
from conductor.engine.schedule import InFlight, Schedule
from conductor.engine.status import ExecutionStatus
from conductor.flow.errors import Cancelled
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
        self.progress = Progress(self.atoms, self.schedule, self.status, self.compensation,
                                 random)
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
            self.progress.finish_success()  # nothing left to run (an empty or finished flow)

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
                    self.progress.mark_done(name, rec.started_at or 0.0)
                    self._loaded.append(rec)
            schedule.unmet[name] = sum(
                1 for p in spec.preds if atoms.records[p].state is not AtomState.SUCCESS
            )
            if rec.state is not AtomState.SUCCESS:
                schedule.open_children[parent] += 1
            if rec.state is AtomState.PENDING and schedule.unmet[name] == 0:
                self.progress.enqueue(name)
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
                self.progress.start(schedule.ready.popleft(), now, changes, starts)
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
        return [] if rec is None else self.progress.succeed(rec, result, now)

    def on_failure(self, name: str, attempt: int, failure: AttemptFailure, now: float
                   ) -> list[AtomRecord]:
        """Attempt `attempt` of `name` failed (raised, timed out, returned bad data)."""
        rec = self._current(name, attempt, AtomState.RUNNING, AtomState.DELEGATED)
        if rec is None:
            return []
        del self.schedule.in_flight[name]
        changes: list[AtomRecord] = []
        self.progress.fail(name, failure, now, changes)
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
        return self.progress.succeed(rec, result, now)

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

