"""The runner's side of delegated attempts: issue, remember, and settle them.

A Runner owns one DelegatedAttempts. It hands each attempt's context a delegator, tells it when
an attempt returned Delegated, and asks it every turn for the records of attempts that are now
settled (conductor.engine.delegated.waiting has the rules) and for the next deadline to wait for.
"""

from __future__ import annotations

import logging

from conductor.engine.core import Core
from conductor.engine.decisions import Action, AttemptFailure, Invocation
from conductor.engine.delegated.issuing import AttemptDelegator
from conductor.engine.delegated.tokens import deadline_key
from conductor.engine.delegated.waiting import DelegationWaits, Verdict
from persistence import jsonvalue
from persistence.contract import ExecutionStore
from persistence.errors import NotSerializable
from persistence.records import (
    AtomRecord,
    AtomState,
    DelegationRecord,
    ExecutionRecord,
    NewDelegation,
)

log = logging.getLogger("conductor.engine")


class DelegatedAttempts:
    """Delegations of one execution as its runner sees them."""

    def __init__(self, store: ExecutionStore, execution: ExecutionRecord, epoch: int,
                 callback_url: str | None = None, deadline_floor: float | None = None) -> None:
        self._store = store
        self._execution = execution
        self._epoch = epoch
        self.callback_url = callback_url
        self.waits = DelegationWaits(store, execution.id, deadline_floor)
        self.look_again = bool(execution.atoms)  # a resumed execution may have delegations
        self.new_rows: list[NewDelegation] = []  # bare deadlines, saved with the next save
        self.settled = 0  # verdicts applied so far
        self._just_delegated: list[tuple[str, int]] = []

    def delegator(self, invocation: Invocation) -> AttemptDelegator:
        """What the attempt's context delegates with."""
        return AttemptDelegator(self._store, self._execution.id, self._epoch,
                                task=invocation.name, attempt=invocation.attempt,
                                callback_base=self.callback_url)

    def delegated(self, name: str, attempt: int, deadline: float | None, now: float) -> None:
        """Attempt `attempt` of `name` returned Delegated (and is now saved DELEGATED): save
        its bare deadline (if any) with that state, and read the rows again (a completion may
        be there already)."""
        if deadline is not None:
            row = NewDelegation(name, attempt, deadline_key(), deadline)
            self.new_rows.append(row)
            self.waits.add(DelegationRecord(
                id=-1, execution_id=self._execution.id, job_id=self._execution.job_id,
                atom_name=name, attempt=attempt, token_hash=row.token_hash, deadline=deadline,
                created_at=now))
        self._just_delegated.append((name, attempt))
        self.look_again = True

    def settle(self, core: Core, now: float) -> list[AtomRecord]:
        """Records of every delegated attempt settled now. Reads the rows first if asked
        (StoreUnavailable propagates: the run must stop)."""
        if self.look_again:
            self.look_again = False
            self.waits.refresh()
            self._warn_unsettleable(core)
        if not self.waits.rows:
            return []
        records: list[AtomRecord] = []
        for verdict in self.waits.verdicts(core.records, core.first_attempt, now):
            records += self._apply(core, verdict, now)
            self.settled += 1
        return records

    def before_start(self, core: Core, invocation: Invocation, now: float
                     ) -> list[AtomRecord] | None:
        """For an attempt about to start whose task already has a result sent with an earlier
        attempt's token: its records, completed with that result (the task is not called
        again). None: start it normally."""
        if invocation.action is not Action.EXECUTE or invocation.name not in self.waits.rows:
            return None
        verdict = self.waits.late_result(
            invocation.name, core.first_attempt(invocation.name), invocation.attempt)
        if verdict is None:
            return None
        records = core.on_delegated(invocation.name, invocation.attempt, now)
        return records + self._apply(core, verdict, now)

    def next_deadline(self, core: Core) -> float | None:
        return self.waits.next_deadline(core.records)

    @property
    def completed_seen(self) -> frozenset[int]:
        return self.waits.completed_seen

    def _apply(self, core: Core, verdict: Verdict, now: float) -> list[AtomRecord]:
        log.info("execution %s: delegated task %r attempt %d settled (%s)%s",
                 self._execution.id, verdict.name, verdict.attempt, verdict.why,
                 f": {verdict.failure}" if verdict.failure else "")
        if verdict.failure is not None:
            failure = AttemptFailure(verdict.failure, verdict.kinds)
            return core.on_delegation_done(verdict.name, verdict.attempt, now, failure=failure)
        try:
            result = jsonvalue.check(verdict.result, what=f"result of task {verdict.name!r}")
        except NotSerializable as bad:  # stored outcomes are JSON; kept as a safety net
            return core.on_delegation_done(
                verdict.name, verdict.attempt, now,
                failure=AttemptFailure.from_exception(bad, retryable=False))
        return core.on_delegation_done(verdict.name, verdict.attempt, now, result=result)

    def _warn_unsettleable(self, core: Core) -> None:
        just, self._just_delegated = self._just_delegated, []
        for name, attempt in just:
            rec = core.records.get(name)
            if (rec is not None and rec.state is AtomState.DELEGATED and rec.attempt == attempt
                    and self.waits.waits_on_nothing(name, attempt, core.first_attempt(name))):
                log.warning("execution %s: task %r attempt %d returned Delegated without any "
                            "delegation or deadline: nothing can ever complete it (use "
                            "context.delegate() or context.sleep_until())",
                            self._execution.id, name, attempt)
