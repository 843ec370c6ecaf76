"""The active runner: a thin loop over the passive core.

Each turn: apply the outcomes that arrived, ask the core what to do, save its records in ONE
fenced write (a finished task's SUCCESS together with the RUNNING of the tasks it unblocked),
and only then dispatch. So a task never starts unless its RUNNING state is saved under the
runner's epoch: a stale owner is fenced off before it can start anything.

Delegated attempts are settled from their delegation rows (conductor.engine.delegated.attempts): the
rows are read when the run resumes, after a task returns Delegated, when `notify_delegations()`
announces a completion, when a cancel is applied, and once more before parking; their deadlines
are timers of this loop. A cancelled run ends its delegated attempts instead of waiting.
"""

from __future__ import annotations

import enum
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
from conductor.engine.decisions import EXECUTE, AttemptFailure, Invocation, redacted_failure
from conductor.engine.delegated import attempts as delegated
from conductor.engine.dispatch import Dispatcher, LocalDispatcher
from conductor.engine.graph import CompiledFlow
from conductor.flow.context import CancelFlag, Delegated, TaskContext
from conductor.flow.errors import TaskTimeout
from persistence import jsonvalue
from persistence.errors import Fenced, NotSerializable, StoreUnavailable
from persistence.records import (
    AtomRecord,
    ExecutionChange,
    ExecutionRecord,
    ExecutionState,
    Failure,
)
from persistence.store import ExecutionStore

log = logging.getLogger("conductor.engine")

GATE_RECHECK = 0.05
"""Seconds between looks at a closed start gate (RunControl.gate); only while it is closed."""

_LOOK_AGAIN = object()
"""Put on a runner's queue by notify_delegations(): read the delegation rows again."""


class RunState(str, enum.Enum):
    """How a run ended. ABANDONED: the runner stopped without saving a final word (aborted,
    fenced off, or the store became unavailable); `reason` and `error` say which."""

    SUCCESS = "SUCCESS"
    REVERTED = "REVERTED"
    FAILED = "FAILED"
    SUSPENDED = "SUSPENDED"
    PARKED = "PARKED"
    ABANDONED = "ABANDONED"


@dataclass
class RunResult:
    """The end of a run: state, the flow's result (SUCCESS) or failure (REVERTED/FAILED)."""

    state: RunState
    result: Any = None
    failure: Failure | None = None
    reason: str = ""
    error: BaseException | None = None
    execution_id: str = ""
    park_until: float | None = None
    """PARKED: the earliest open deadline of a delegated attempt (None: none)."""
    completed_seen: frozenset[int] = frozenset()
    """PARKED: ids of the delegation rows seen completed when the run decided to park; a row
    completed later must wake the parked job again (conductor.daemon.jobrun checks)."""


class EngineStalled(RuntimeError):
    """The core has nothing to run and nothing to wait for, yet the flow has not finished."""


@dataclass
class _Done:
    name: str
    attempt: int
    action: str
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
        self._delegations = delegated.DelegatedAttempts(store, execution, epoch, callback_url,
                                                        deadline_floor)

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
        record = self.execution
        core = Core(self.flow, record.inputs, record.atoms, record.failure, random=self.random)
        pending: dict[str, AtomRecord] = {}
        execution: ExecutionChange | None = ExecutionChange(
            ExecutionState.RUNNING, failure=core.failure
        )
        stop_deadline: float | None = None
        cancel_applied = False
        held: list[Invocation] = []  # saved RUNNING, waiting for the control's gate to open
        while True:
            control = self.control
            if control.aborted:
                self._cancel_flag.set()
                return RunResult(RunState.ABANDONED, reason="aborted")
            now = self.clock.now()
            if control.cancelled and not cancel_applied:
                cancel_applied = True
                self._cancel_flag.set()
                if core.delegated:
                    # A completion recorded before the cancel counts (its sender was told
                    # so): read the rows once more before the delegations are ended.
                    self._delegations.look_again = True
                    problem = self._settle(core, now, pending)
                    if problem:
                        return problem
                self._collect(pending, core.cancel(now))
            self._expire(core, now, pending)
            problem = self._settle(core, now, pending)
            if problem:
                return problem
            stopping = control.stop_requested
            if stopping and stop_deadline is None:
                grace = control.grace
                stop_deadline = float("inf") if grace is None else now + grace
            paused = control.paused  # read once a turn: a resume() after this wakes the next
            decision = core.decide(now, start=not (stopping or paused))
            self._collect(pending, decision.records)
            if decision.execution is not None:
                execution = decision.execution
            if decision.finished:
                return self._finish(pending, execution, core)
            out_of_time = stop_deadline is not None and now >= stop_deadline
            running = core.busy - len(held)  # held starts never began: nothing to wait for
            if stopping and (running == 0 or out_of_time):
                if core.busy:
                    self._cancel_flag.set()  # abandoned attempts may notice and return early
                execution = ExecutionChange(ExecutionState.SUSPENDED, failure=core.failure)
                problem = self._save(pending, execution)
                return problem or RunResult(RunState.SUSPENDED, reason="stopped")
            if decision.only_delegated and not paused:
                # A completion may have arrived unannounced: read the rows once more first.
                settled = self._delegations.settled
                self._delegations.look_again = True
                problem = self._settle(core, now, pending)
                if problem:
                    return problem
                if self._delegations.settled > settled:
                    continue
                execution = ExecutionChange(ExecutionState.PARKED, failure=core.failure)
                problem = self._save(pending, execution)
                return problem or RunResult(
                    RunState.PARKED, park_until=self._delegations.next_deadline(core),
                    completed_seen=self._delegations.completed_seen)
            if pending or execution is not None or decision.starts:
                problem = self._save(pending, execution)
                if problem:
                    return problem
                execution = None
            held.extend(decision.starts)
            if held and control.may_start():
                for invocation in held:
                    early = self._delegations.before_start(core, invocation, now)
                    if early is None:
                        self._dispatch(invocation, now)
                    else:  # completed with a late result: save it on the next turn
                        self._collect(pending, early)
                        self._events.put(TICK)
                held.clear()
            if (core.busy == 0 and decision.wake_at is None and not decision.only_delegated
                    and not paused and not stopping and not pending):
                raise EngineStalled(
                    f"execution {self.execution.id}: nothing runs, nothing is due and the flow "
                    "has not finished (an engine bug)"
                )
            idle = stopping or paused  # due retries wait: no busy loop while paused
            recheck = now + GATE_RECHECK if held else None
            deadlines = [d for d in (None if idle else decision.wake_at, stop_deadline, recheck,
                                     min((d for d, _ in self._deadlines.values()),
                                         default=None),
                                     self._delegations.next_deadline(core))
                         if d is not None and d != float("inf")]
            event = self.clock.wait(self._events, min(deadlines, default=None),
                                    busy=core.busy > 0)
            while event is not None:
                if event is _LOOK_AGAIN:
                    self._delegations.look_again = True
                elif event is not TICK:
                    self._apply(core, event, pending)
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    event = None

    def _finish(self, pending: dict[str, AtomRecord], execution: ExecutionChange | None,
                core: Core) -> RunResult:
        assert execution is not None and core.final is not None
        final = core.final
        try:
            problem = self._save(pending, final)
        except NotSerializable as exc:
            failure = redacted_failure(exc)
            final = ExecutionChange(ExecutionState.FAILED, failure=failure)
            problem = self._save(pending, final)
        if problem:
            return problem
        state = RunState(final.state.value)
        return RunResult(state, result=final.result, failure=final.failure)

    def _save(self, pending: dict[str, AtomRecord], execution: ExecutionChange | None
              ) -> RunResult | None:
        try:
            self.store.save(self.execution.id, self.epoch, list(pending.values()), execution,
                            delegations=self._delegations.new_rows)
        except Fenced as exc:
            self._cancel_flag.set()
            log.warning("execution %s: fenced off, stopping: %s", self.execution.id, exc)
            return RunResult(RunState.ABANDONED, reason="fenced", error=exc)
        except StoreUnavailable as exc:
            self._cancel_flag.set()
            log.warning("execution %s: store unavailable, stopping: %s", self.execution.id, exc)
            return RunResult(RunState.ABANDONED, reason="store unavailable", error=exc)
        pending.clear()
        self._delegations.new_rows = []
        return None

    def _settle(self, core: Core, now: float, pending: dict[str, AtomRecord]
                ) -> RunResult | None:
        """Apply the delegated attempts settled now; a store that stays unavailable while
        reading their rows stops the run (the job is released and retried later)."""
        try:
            self._collect(pending, self._delegations.settle(core, now))
        except StoreUnavailable as exc:
            self._cancel_flag.set()
            log.warning("execution %s: store unavailable, stopping: %s", self.execution.id, exc)
            return RunResult(RunState.ABANDONED, reason="store unavailable", error=exc)
        return None

    @staticmethod
    def _collect(pending: dict[str, AtomRecord], records: list[AtomRecord]) -> None:
        for rec in records:
            pending[rec.name] = rec

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
        if invocation.timeout is not None and invocation.action == EXECUTE:
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

    def _expire(self, core: Core, now: float, pending: dict[str, AtomRecord]) -> None:
        for (name, attempt), (deadline, timeout) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[(name, attempt)]
                error = TaskTimeout(
                    f"task {name!r} attempt {attempt} ran past its timeout of {timeout} s; "
                    "its late result will be discarded"
                )
                self._collect(pending, core.on_failure(
                    name, attempt, AttemptFailure.from_exception(error), now
                ))

    def _apply(self, core: Core, done: _Done, pending: dict[str, AtomRecord]) -> None:
        now = self.clock.now()
        self._deadlines.pop((done.name, done.attempt), None)
        exc = done.future.exception()
        if done.action != EXECUTE:
            if exc is None:
                records = core.on_reverted(done.name, now)
            else:
                records = core.on_revert_failed(
                    done.name, AttemptFailure.from_exception(exc), now
                )
            self._collect(pending, records)
            return
        if exc is not None:
            records = core.on_failure(
                done.name, done.attempt, AttemptFailure.from_exception(exc), now
            )
        else:
            value = done.future.result()
            if isinstance(value, Delegated):
                records = core.on_delegated(done.name, done.attempt, now)
                if records:
                    self._delegations.delegated(done.name, done.attempt, value.deadline, now)
            else:
                try:
                    value = jsonvalue.check(value, what=f"result of task {done.name!r}")
                except NotSerializable as bad:
                    records = core.on_failure(done.name, done.attempt,
                                              AttemptFailure.from_exception(bad, retryable=False),
                                              now)
                else:
                    records = core.on_success(done.name, done.attempt, value, now)
        self._collect(pending, records)
