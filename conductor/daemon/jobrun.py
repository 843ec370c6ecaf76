"""One claimed job, from claim to its end on the board.

The order of steps is what keeps the promises: the flow is resolved from this conductor's own
registry (never from job data); the execution is taken over with the claim's epoch before any
state is written (so a stale owner is fenced off); the final state is saved before the job is
completed on the board (so a crash in between only makes the next owner complete it from the
saved state, without running anything again). Whatever happens, the claim ends in exactly one
of: complete, release (with backoff), park, trash, or abandoned because it was already lost.

Failure policy: a job whose flow this conductor lacks is declined (released with backoff; dead-
lettered after `max_declines`); a flow that fails to import (a rolling deploy) or a database or
ZooKeeper outage releases the job with backoff and is neither a decline nor a crash; a job whose
last `max_crashes` owners died holding it, with no task succeeding in between, is dead-lettered
(the rule, with its count and alive check, is `crashes.CrashPolicy`; JobRun acts on its verdict).
An owner that lost its claim but lives on records that on the job (`crashes.settle`). The
outcome a completed job carries is built by conductor/daemon/outcome.py.

Delegations: a "changed" notification carrying a new completion marker makes the runner read
its delegation rows at once; after parking, the rows are read once more and the job is woken
if a delegation was completed after the runner last looked (a completion racing the park).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from conductor import jobfields
from conductor.daemon import crashes
from conductor.daemon.outcome import job_outcome
from conductor.daemon.services import Services
from conductor.engine.control import RunControl
from conductor.engine.dispatch import TaskNotSendable
from conductor.engine.graph import CompiledFlow
from conductor.engine.runner import Runner, RunResult, RunState
from conductor.registry import InvalidInputs, RegistryError, UnknownFlow
from jobboard.errors import BoardError, BoardUnavailable, ClaimConflict, ClaimLost
from jobboard.model import Claim
from persistence.errors import Fenced, PersistenceError, StoreUnavailable
from persistence.records import ExecutionRecord, Failure

SETTLE_FOR = 60.0
"""Seconds an owner that lost its claim keeps trying to record that it did not crash."""


class JobEnd(str, enum.Enum):
    """How a JobRun left the job on the board."""

    COMPLETED = "COMPLETED"
    RELEASED = "RELEASED"  # given back: stopping, or a transient problem here (with backoff)
    DECLINED = "DECLINED"  # given back: this conductor lacks the flow
    PARKED = "PARKED"
    TRASHED = "TRASHED"
    ABANDONED = "ABANDONED"  # the claim was lost (or fenced off): another owner has the job


class JobLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every message with the job id."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.extra['job']}: {msg}" if self.extra else msg, kwargs


class _Finished(Exception):
    """Internal: the job reached its end on the board before the flow ran."""

    def __init__(self, end: JobEnd) -> None:
        super().__init__(end.value)
        self.end = end


class JobRun:
    """Runs one claimed job to its end (see the module docstring for the order of steps)."""

    def __init__(self, services: Services, claim: Claim) -> None:
        self.services = services
        self.claim = claim
        self.job_id = claim.job_id
        self.document = claim.document
        self.control = RunControl()
        self.control.gate = services.liveness.may_start
        # An adapter, not a child logger per job: loggers are never freed.
        self.log = JobLog(services.log.getChild("job"), {"job": claim.job_id})
        self._runner: Runner | None = None
        self._completion_marker = jobfields.completion_marker(claim.document)
        self._crashed = False  # ended as a crash on purpose (an unexpected error here)
        self.crash_policy = crashes.CrashPolicy(services.board, services.store,
                                                services.policy.max_crashes, self.log)

    # -- the steps ----------------------------------------------------------------------
    def run(self) -> JobEnd:
        end = self._run()
        if end is JobEnd.ABANDONED and not self._crashed:
            self._settle_lost_claim()
        return end

    def _run(self) -> JobEnd:
        services = self.services
        services.liveness.add(self.control)
        self.claim.add_listener(self._on_claim_event)
        if self.claim.lost.is_set():
            self.control.abort()
        try:
            flow, execution = self._prepare()
            if execution.state.finished:
                return self._complete(execution.state.value, execution.id, execution.result,
                                      execution.failure)
            if jobfields.cancel_requested(self.document):
                self.control.cancel()
            self._runner = Runner(
                services.store, flow, execution, self.claim.epoch,
                dispatcher=services.dispatcher, control=self.control,
                callback_url=services.callback_url,
                deadline_floor=jobfields.deadline_passed(self.document))
            return self._conclude(self._runner.run())
        except _Finished as finished:
            return finished.end
        except TaskNotSendable as exc:  # this conductor runs tasks in processes; others may not
            return self._decline(str(exc))
        except Exception:
            self.log.exception("unexpected error; giving the job back (counted as a crash)")
            self._crashed = True
            return self._release(crashed=True)
        finally:
            services.liveness.remove(self.control)

    def stop(self, grace: float | None) -> None:
        """Ask the run to stop: tasks in flight may finish within `grace`, then the job is
        released for another conductor."""
        self.control.stop(grace)

    def _prepare(self) -> tuple[CompiledFlow, ExecutionRecord]:
        """Resolve the flow from this conductor's registry and open the job's execution with
        the claim's epoch (created and taken over in one transaction). A resumed execution
        keeps the flow version it started with."""
        store, registry = self.services.store, self.services.registry
        flow_name = str(self.document[jobfields.FLOW])
        inputs = self.document[jobfields.INPUTS]
        self._check_crashes_before_building()
        flow = self._resolve(flow_name, inputs, None)
        try:
            execution = store.open_execution(
                self.job_id, flow_name, registry.get(flow_name).version, inputs,
                epoch=self.claim.epoch, owner=self.services.owner)
            if execution.flow_version != registry.get(flow_name).version:
                flow = self._resolve(flow_name, inputs, execution.flow_version)
            self._check_crashes(execution)
            return flow, execution
        except Fenced as exc:
            self.log.warning("claim is stale, leaving the job: %s", exc)
            raise _Finished(JobEnd.ABANDONED) from None
        except StoreUnavailable as exc:
            self.log.warning("database unavailable, giving the job back: %s", exc)
            raise _Finished(self._release(backoff=True)) from None
        except ValueError as exc:  # the job's execution runs another flow: bad job data
            raise _Finished(self._trash(str(exc))) from None

    def _resolve(self, flow_name: str, inputs: Any, version: str | None) -> CompiledFlow:
        try:
            return self.services.registry.compile(flow_name, inputs, version)
        except UnknownFlow as exc:
            raise _Finished(self._decline(str(exc))) from None
        except InvalidInputs as exc:
            raise _Finished(self._trash(f"invalid inputs for flow {flow_name!r}: {exc}")) from None
        except ImportError as exc:  # a rolling deploy: this conductor's code is incomplete
            # Transient: neither a decline (the flow is ours) nor a crash; never dead-lettered.
            self.log.warning("flow %r failed to import (%s); giving the job back", flow_name, exc)
            raise _Finished(self._release(backoff=True)) from None
        except RegistryError as exc:
            raise _Finished(self._trash(f"flow {flow_name!r} cannot be built: {exc}")) from None
        except Exception as exc:  # a bug in the flow's factory: dead-letter, fix, restore
            self.log.exception("flow %r raised while being built", flow_name)
            end = self._trash(f"flow {flow_name!r} raised while being built: {exc!r}")
            raise _Finished(end) from exc

    def _check_crashes(self, execution: ExecutionRecord | None) -> None:
        """Apply the poison-pill rule (crashes.CrashPolicy) to this claim: record progress
        (which resets the count), or dead-letter a job whose last owners all died holding it."""
        try:
            verdict = self.crash_policy.judge(self.job_id, self.claim.epoch, self.document,
                                              execution)
        except BoardError as exc:
            self.log.warning("could not check the job's earlier owners, giving it back: %s", exc)
            raise _Finished(self._release(backoff=True)) from None
        self.document = verdict.document
        if verdict.progress is not None:
            self._update_document({jobfields.SETTLED_ATTEMPTS: self._attempts() - 1,
                                   jobfields.PROGRESS: verdict.progress})
        elif verdict.poison is not None:
            raise _Finished(self._trash(verdict.poison))

    def _check_crashes_before_building(self) -> None:
        """The same check, at the threshold only, before the flow is built: a job whose flow
        kills the process while being built (inputs that exhaust memory, a crashing native
        extension) never gets an execution opened, so the check after opening never runs."""
        if not self.crash_policy.at_threshold(self.document):
            return
        try:
            self._check_crashes(self.services.store.find_by_job(self.job_id))
        except StoreUnavailable as exc:  # an outage is never a reason to dead-letter
            self.log.warning("database unavailable, giving the job back: %s", exc)
            raise _Finished(self._release(backoff=True)) from None

    # -- ending -------------------------------------------------------------------------
    def _conclude(self, result: RunResult) -> JobEnd:
        if result.state in (RunState.SUCCESS, RunState.REVERTED, RunState.FAILED):
            return self._complete(result.state.value, result.execution_id, result.result,
                                  result.failure)
        if result.state is RunState.SUSPENDED:
            return self._release()
        if result.state is RunState.PARKED:
            return self._park(result)
        # ABANDONED
        if isinstance(result.error, StoreUnavailable):
            return self._release(backoff=True)
        if self.claim.lost.is_set() or result.reason == "aborted":  # aborted: only when lost
            self.log.warning("claim lost (%s): abandoned the job at once",
                             self.claim.lost_reason or "the ZooKeeper session was lost")
        else:
            self.log.info("abandoned the job (%s)", result.reason)
        return JobEnd.ABANDONED

    def _complete(self, state: str, execution_id: str, result: Any,
                  failure: Failure | None) -> JobEnd:
        outcome = job_outcome(state, execution_id, result=result, failure=failure,
                              conductor=self.services.name, finished_at=time.time())
        if self._board_op(lambda: self.services.board.complete(self.claim, outcome)):
            self.log.info("completed: %s", outcome["state"])
            return JobEnd.COMPLETED
        return JobEnd.ABANDONED

    def _release(self, *, backoff: bool = False, crashed: bool = False) -> JobEnd:
        updates = None if crashed else jobfields.updates(
            {jobfields.SETTLED_ATTEMPTS: self._attempts()})
        if backoff:
            delay = self.services.backoff.hold(self.job_id)
            self.log.info("leaving the job alone here for %.1f s", delay)
        if self._board_op(lambda: self.services.board.release(self.claim, updates)):
            return JobEnd.RELEASED
        return JobEnd.ABANDONED

    def _decline(self, why: str) -> JobEnd:
        declines = jobfields.declines(self.document) + 1
        limit = self.services.policy.max_declines
        if declines >= limit:
            return self._trash(f"declined {declines} times (max_declines={limit}); last: {why}")
        delay = self.services.backoff.hold(self.job_id)
        self.log.warning("declining the job (%s); not retrying it here for %.1f s", why, delay)
        updates = jobfields.updates({jobfields.DECLINES: declines,
                                     jobfields.SETTLED_ATTEMPTS: self._attempts()})
        if self._board_op(lambda: self.services.board.release(self.claim, updates)):
            return JobEnd.DECLINED
        return JobEnd.ABANDONED

    def _park(self, result: RunResult) -> JobEnd:
        until = result.park_until
        updates = jobfields.updates({jobfields.SETTLED_ATTEMPTS: self._attempts()})
        if not self._board_op(lambda: self.services.board.park(self.claim, until, updates)):
            return JobEnd.ABANDONED
        self.log.info("parked until its delegated tasks complete%s",
                      "" if until is None else f" (deadline {time.ctime(until)})")
        why = None
        if self.control.cancelled or jobfields.cancel_requested(self.claim.document):
            why = "a cancel was requested while parking"  # the park carried it; nobody else wakes
        elif self._completed_meanwhile(result):
            why = "a delegation was completed while parking"
        if why is not None:
            self.log.info("%s: waking the job", why)
            try:
                self.services.board.wake(self.job_id)
            except BoardError as exc:
                self.log.error("could not wake the job (%s): %s", why, exc)
        return JobEnd.PARKED

    def _completed_meanwhile(self, result: RunResult) -> bool:
        """Whether a delegation was completed after the runner last read the rows (its
        completer may have seen the job still claimed and only notified us); a database
        that cannot be read counts as yes (waking is harmless, staying parked is not)."""
        try:
            rows = self.services.store.delegations(result.execution_id)
        except PersistenceError:
            return True
        return any(row.completed_at is not None and row.id not in result.completed_seen
                   for row in rows)

    def _trash(self, reason: str) -> JobEnd:
        self.log.error("dead-lettering the job: %s", reason)
        if self._board_op(lambda: self.services.board.trash(self.job_id, reason, claim=self.claim)):
            return JobEnd.TRASHED
        return JobEnd.ABANDONED

    def _attempts(self) -> int:
        return jobfields.attempts(self.document)

    def _settle_lost_claim(self) -> None:
        """The claim ended without this conductor ending it (its session expired, or a newer
        owner fenced it off), and this process lives on: record on the job that this attempt
        was not a crash, so that its next owners do not count it toward `max_crashes`."""
        attempt = self._attempts()
        if crashes.settle(self.services.board, self.job_id, attempt,
                          until=time.monotonic() + SETTLE_FOR,
                          stopping=lambda: self.control.stop_requested):
            self.log.info("recorded that claim %d of the job ended without a crash", attempt)

    def _update_document(self, fields: jobfields.JobFields) -> None:
        try:
            self.services.board.update(self.job_id, jobfields.updates(fields))
            self.document = {**self.document, **fields}
        except BoardError as exc:
            self.log.warning("could not record progress on the board: %s", exc)

    def _board_op(self, operation: Callable[[], object], *, fallback: bool = True) -> bool:
        """Run a claim-ending board operation, retrying while ZooKeeper is unreachable for as
        long as the claim may still be ours. False when the claim turned out lost (nothing
        changed). Any other board error is a bug: the job is released plainly instead (with
        the same retries: a job left claimed by a live session would be stuck until it ends)."""
        delay = 0.1
        while True:
            try:
                operation()
                return True
            except ClaimLost as exc:
                self.log.warning("%s", exc)
                return False
            except (BoardUnavailable, ClaimConflict) as exc:
                if self.claim.lost.wait(delay):
                    self.log.warning("claim lost while retrying the board: %s", exc)
                    return False
                self.log.warning("board operation failed, retrying: %s", exc)
                delay = min(delay * 2, 5.0)
            except BoardError:
                if not fallback:
                    self.log.exception("could not release the job; it is freed when this "
                                       "session ends")
                    return False
                self.log.exception("board operation refused; releasing the job plainly")
                return self._board_op(lambda: self.services.board.release(self.claim),
                                      fallback=False)

    # -- notifications (board event thread) ---------------------------------------------
    def _on_claim_event(self, claim: Claim, kind: str) -> None:
        if kind == "lost":
            self.control.abort()
        elif kind == "changed":
            if jobfields.cancel_requested(claim.document):
                self.control.cancel()
            marker = jobfields.completion_marker(claim.document)
            if marker != self._completion_marker:
                self._completion_marker = marker
                runner = self._runner
                if runner is not None:
                    runner.notify_delegations()

