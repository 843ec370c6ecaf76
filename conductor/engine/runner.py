"""The active runner: a thin loop over the passive core.

Each turn: apply the outcomes that arrived, ask the core what to do, save its records in ONE
fenced write (a finished task's SUCCESS together with the RUNNING of the tasks it unblocked),
and only then dispatch. So a task never starts unless its RUNNING state is saved under the
runner's epoch: a stale owner is fenced off before it can start anything.

Delegated attempts are settled from their delegation rows (conductor.engine.delegated): the
rows are read when the run resumes, after a task returns Delegated, when `notify_delegations()`
announces a completion, when a cancel is applied, and once more before parking; their deadlines
are timers of this loop. A cancelled run ends its delegated attempts instead of waiting.
"""

from __future__ import annotations

import logging
import queue
import random as random_module
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from conductor.engine.clock import TICK, Clock, SystemClock
from conductor.engine.control import RunControl
from conductor.engine.core import Core
from conductor.engine.decisions import (
    Action,
    AttemptFailure,
    Decision,
    Invocation,
    redacted_failure,
)
from conductor.engine.delegated.attempts import DelegatedAttempts
from conductor.engine.dispatch import Dispatcher, LocalDispatcher
from conductor.engine.graph import CompiledFlow
from conductor.engine.results import EngineStalled, RunResult, RunState
from conductor.flow.context import CancelFlag, Delegated, TaskContext
from conductor.flow.errors import TaskTimeout
from persistence import jsonvalue
from persistence.contract import ExecutionStore
from persistence.errors import Fenced, NotSerializable, StoreUnavailable
from persistence.records import (
    AtomRecord,
    ExecutionChange,
    ExecutionRecord,
    ExecutionState,
)

__all__ = ["GATE_RECHECK", "EngineStalled", "RunResult", "RunState", "Runner"]

log = logging.getLogger("conductor.engine")

GATE_RECHECK = 0.05
"""Seconds between looks at a closed start gate (RunControl.gate); only while it is closed."""

_LOOK_AGAIN = object()
"""Put on a runner's queue by notify_delegations(): read the delegation rows again."""


@dataclass
class _Done:
    name: str
    attempt: int
    action: Action
    future: Future[Any]


class Runner:
    """Drives one execution to an end (or to a clean stop) with a store and a dispatcher.

    `execution` is the record returned by `store.take_over(...)` for `epoch`. The dispatcher
    defaults to a thread pool owned (and shut down) by the runner; pass one to share it.
    `callback_url`: base URL of the HTTP callback endpoint, for the handles of delegations.
    `deadline_floor`: a time a deadline keeper judged passed (delegation deadlines up to it
    count as passed even if this machine's clock lags).
    """

    def __init__(
        self,
        store: ExecutionStore,
        flow: CompiledFlow,
        execution: ExecutionRecord,
        epoch: int,
        *,
        dispatcher: Dispatcher | None = None,
        clock: Clock | None = None,
        control: RunControl | None = None,
        random: Callable[[], float] = random_module.random,
        logger: logging.Logger | None = None,
        callback_url: str | None = None,
        deadline_floor: float | None = None,
    ) -> None:
        self.store = store
        self.flow = flow
        self.execution = execution
        self.epoch = epoch
        self._own_dispatcher = dispatcher is None
        self.dispatcher: Dispatcher = dispatcher or LocalDispatcher()
        self.clock = clock or SystemClock()
        self.control = control or RunControl()
        self.random = random
        self.logger = logger or logging.getLogger("conductor.task")
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._deadlines: dict[tuple[str, int], tuple[float, float]] = {}  # (deadline, timeout)
        self._cancel_flag = CancelFlag()
        self._delegations = DelegatedAttempts(store, execution, epoch, callback_url,
                                              deadline_floor)
        # What one run carries from turn to turn (a Runner runs once).
        self._core: Core  # made when the run starts, from the execution's saved records
        self._pending: dict[str, AtomRecord] = {}  # records to save with the next write
        self._unsaved: ExecutionChange | None = None  # the execution's change to save next
        self._held: list[Invocation] = []  # saved RUNNING, waiting for the control's gate
        self._stop_deadline: float | None = None  # when a stop's grace ends
        self._cancel_applied = False

    def notify_delegations(self) -> None:
        """A delegation of this execution may have been completed: read the rows again (at
        once; from any thread)."""
        self._events.put(_LOOK_AGAIN)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run until the execution finishes, parks, is stopped, or must be abandoned.

        Raises TaskNotSendable (before anything is written) if the dispatcher cannot run one
        of the flow's tasks.
        """
        self.dispatcher.check(self.flow)
        self.control.attach(self._events)
        try:
            outcome = self._loop()
            outcome.execution_id = self.execution.id
            return outcome
        finally:
            self.control.detach(self._events)
            if self._own_dispatcher:
                self.dispatcher.shutdown(wait=False)

    def _loop(self) -> RunResult:
        """One turn: take in what happened, ask the core, end the run if it is over (finished,
        stopped, parked), save, start what may start, wait for the next event."""
        record = self.execution
        core = self._core = Core(self.flow, record.inputs, record.atoms, record.failure,
                                 state=record.state, random=self.random)
        if core.final is None and not record.state.finished:  # an end is saved as it was
            self._unsaved = core.status.move(ExecutionState.RUNNING)
        while True:
            if self.control.aborted:
                self._cancel_flag.set()
                return RunResult(RunState.ABANDONED, reason="aborted")
            now = self.clock.now()
            ended = self._take_in(now)
            if ended:
                return ended
            stopping, paused = self._read_control(now)
            decision = self._decide(now, start=not (stopping or paused))
            if decision.finished:
                return self._finish()
            ended = self._suspend_if_stopping(now, stopping)
            if ended:
                return ended
            if decision.only_delegated and not paused:
                parked = self._park(now)
                if parked is None:
                    continue  # a delegation was settled meanwhile: take another turn
                return parked
            ended = self._save_turn(decision)
            if ended:
                return ended
            self._start_held(decision.starts, now)
            self._check_stalled(decision, idle=stopping or paused)
            self._wait(now, decision, idle=stopping or paused)

    # -- the phases of a turn -------------------------------------------------------------
    def _take_in(self, now: float) -> RunResult | None:
        """Apply what happened outside the core: a cancel (once), attempts past their
        timeouts, delegated attempts settled now."""
        core = self._core
        if self.control.cancelled and not self._cancel_applied:
            self._cancel_applied = True
            self._cancel_flag.set()
            if core.delegated:
                # A completion recorded before the cancel counts (its sender was told so):
                # read the rows once more before the delegations are ended.
                self._delegations.look_again = True
                problem = self._settle(now)
                if problem:
                    return problem
            self._collect(core.cancel(now))
        self._expire(now)
        return self._settle(now)

    def _read_control(self, now: float) -> tuple[bool, bool]:
        """(stopping, paused), read once a turn: a resume() after this wakes the next turn. The
        grace of a stop starts counting the first time it is seen."""
        stopping = self.control.stop_requested
        if stopping and self._stop_deadline is None:
            grace = self.control.grace
            self._stop_deadline = float("inf") if grace is None else now + grace
        return stopping, self.control.paused

    def _decide(self, now: float, *, start: bool) -> Decision:
        decision = self._core.decide(now, start=start)
        self._collect(decision.records)
        if decision.execution is not None:
            self._unsaved = decision.execution
        return decision

    def _suspend_if_stopping(self, now: float, stopping: bool) -> RunResult | None:
        """Stopping, with nothing running any more or the grace over: save SUSPENDED."""
        if not stopping:
            return None
        core = self._core
        out_of_time = self._stop_deadline is not None and now >= self._stop_deadline
        running = core.busy - len(self._held)  # held starts never began: nothing to wait for
        if running and not out_of_time:
            return None
        if core.busy:
            self._cancel_flag.set()  # abandoned attempts may notice and return early
        problem = self._save(core.status.move(ExecutionState.SUSPENDED))
        return problem or RunResult(RunState.SUSPENDED, reason="stopped")

    def _park(self, now: float) -> RunResult | None:
        """Only delegated work is left: save PARKED. None: a completion had arrived
        unannounced (the rows are read once more first), so the run goes on."""
        delegations = self._delegations
        settled = delegations.settled
        delegations.look_again = True
        problem = self._settle(now)
        if problem:
            return problem
        if delegations.settled > settled:
            return None
        problem = self._save(self._core.status.move(ExecutionState.PARKED))
        return problem or RunResult(
            RunState.PARKED, park_until=delegations.next_deadline(self._core),
            completed_seen=delegations.completed_seen)

    def _save_turn(self, decision: Decision) -> RunResult | None:
        """Save the turn's records (and execution change) in one fenced write, before any of
        its starts is dispatched."""
        if self._pending or self._unsaved is not None or decision.starts:
            problem = self._save(self._unsaved)
            if problem:
                return problem
            self._unsaved = None
        return None

    def _start_held(self, starts: list[Invocation], now: float) -> None:
        """Dispatch the saved starts once the control lets them (its gate: the session is
        provably alive); until then they are held."""
        self._held.extend(starts)
        if not self._held or not self.control.may_start():
            return
        for invocation in self._held:
            early = self._delegations.before_start(self._core, invocation, now)
            if early is None:
                self._dispatch(invocation, now)
            else:  # completed with a late result: save it on the next turn
                self._collect(early)
                self._events.put(TICK)
        self._held.clear()

    def _check_stalled(self, decision: Decision, *, idle: bool) -> None:
        if (self._core.busy == 0 and decision.wake_at is None and not decision.only_delegated
                and not idle and not self._pending):
            raise EngineStalled(
                f"execution {self.execution.id}: nothing runs, nothing is due and the flow "
                "has not finished (an engine bug)"
            )

    def _wait(self, now: float, decision: Decision, *, idle: bool) -> None:
        """Wait for the next event or deadline, then apply every event that arrived. Due
        retries wait while idle (stopping or paused): no busy loop."""
        core = self._core
        recheck = now + GATE_RECHECK if self._held else None
        deadlines = [d for d in (None if idle else decision.wake_at, self._stop_deadline,
                                 recheck,
                                 min((d for d, _ in self._deadlines.values()), default=None),
                                 self._delegations.next_deadline(core))
                     if d is not None and d != float("inf")]
        event = self.clock.wait(self._events, min(deadlines, default=None), busy=core.busy > 0)
        while event is not None:
            if event is _LOOK_AGAIN:
                self._delegations.look_again = True
            elif event is not TICK:
                self._apply(event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                event = None

    # -- ending and saving ----------------------------------------------------------------
    def _finish(self) -> RunResult:
        final = self._core.final
        assert final is not None
        try:
            problem = self._save(final)
        except NotSerializable as exc:
            final = self._core.status.move(ExecutionState.FAILED,
                                           failure=redacted_failure(exc))
            problem = self._save(final)
        if problem:
            return problem
        state = RunState(final.state.value)
        return RunResult(state, result=final.result, failure=final.failure)

    def _save(self, execution: ExecutionChange | None) -> RunResult | None:
        try:
            self.store.save(self.execution.id, self.epoch, list(self._pending.values()),
                            execution, delegations=self._delegations.new_rows)
        except Fenced as exc:
            self._cancel_flag.set()
            log.warning("execution %s: fenced off, stopping: %s", self.execution.id, exc)
            return RunResult(RunState.ABANDONED, reason="fenced", error=exc)
        except StoreUnavailable as exc:
            self._cancel_flag.set()
            log.warning("execution %s: store unavailable, stopping: %s", self.execution.id, exc)
            return RunResult(RunState.ABANDONED, reason="store unavailable", error=exc)
        self._pending.clear()
        self._delegations.new_rows = []
        return None

    def _settle(self, now: float) -> RunResult | None:
        """Apply the delegated attempts settled now; a store that stays unavailable while
        reading their rows stops the run (the job is released and retried later)."""
        try:
            self._collect(self._delegations.settle(self._core, now))
        except StoreUnavailable as exc:
            self._cancel_flag.set()
            log.warning("execution %s: store unavailable, stopping: %s", self.execution.id, exc)
            return RunResult(RunState.ABANDONED, reason="store unavailable", error=exc)
        return None

    def _collect(self, records: list[AtomRecord]) -> None:
        """Records to save with the next write (the latest of each atom)."""
        for rec in records:
            self._pending[rec.name] = rec

    # -- attempts -----------------------------------------------------------------------
    def _dispatch(self, invocation: Invocation, now: float) -> None:
        context = TaskContext(
            execution_id=self.execution.id,
            job_id=self.execution.job_id,
            task=invocation.name,
            attempt=invocation.attempt,
            cancel=self._cancel_flag,
            logger=self.logger,
            delegator=self._delegations.delegator(invocation),
        )
        if invocation.timeout is not None and invocation.action is Action.EXECUTE:
            self._deadlines[(invocation.name, invocation.attempt)] = (
                now + invocation.timeout, invocation.timeout
            )
        try:
            future = self.dispatcher.submit(invocation, context)
        except Exception as exc:  # a broken pool: fail the attempt, never the loop
            future = Future()
            future.set_exception(exc)
        done = _Done(invocation.name, invocation.attempt, invocation.action, future)
        future.add_done_callback(lambda _: self._events.put(done))

    def _expire(self, now: float) -> None:
        """Fail the attempts past their timeouts (their late results are discarded)."""
        for (name, attempt), (deadline, timeout) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[(name, attempt)]
                error = TaskTimeout(
                    f"task {name!r} attempt {attempt} ran past its timeout of {timeout} s; "
                    "its late result will be discarded"
                )
                self._collect(self._core.on_failure(
                    name, attempt, AttemptFailure.from_exception(error), now
                ))

    def _apply(self, done: _Done) -> None:
        """Hand a finished call's outcome to the core."""
        now = self.clock.now()
        self._deadlines.pop((done.name, done.attempt), None)
        if done.action is Action.REVERT:
            self._collect(self._reverted(done, now))
        else:
            self._collect(self._executed(done, now))

    def _reverted(self, done: _Done, now: float) -> list[AtomRecord]:
        exc = done.future.exception()
        if exc is None:
            return self._core.on_reverted(done.name, now)
        return self._core.on_revert_failed(done.name, AttemptFailure.from_exception(exc), now)

    def _executed(self, done: _Done, now: float) -> list[AtomRecord]:
        core = self._core
        exc = done.future.exception()
        if exc is not None:
            return core.on_failure(done.name, done.attempt, AttemptFailure.from_exception(exc),
                                   now)
        value = done.future.result()
        if isinstance(value, Delegated):
            records = core.on_delegated(done.name, done.attempt, now)
            if records:
                self._delegations.delegated(done.name, done.attempt, value.deadline, now)
            return records
        try:
            value = jsonvalue.check(value, what=f"result of task {done.name!r}")
        except NotSerializable as bad:
            return core.on_failure(done.name, done.attempt,
                                   AttemptFailure.from_exception(bad, retryable=False), now)
        return core.on_success(done.name, done.attempt, value, now)
