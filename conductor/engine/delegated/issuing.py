"""Issuing delegations from inside a running attempt (the runner gives each context one).

The delegation row is saved with a fenced write (the attempt's execution and claim epoch)
BEFORE the task can hand its token to anyone: a completion can never arrive for a delegation
the database does not know, and a stale owner (fenced off) cannot issue tokens at all.
"""

from __future__ import annotations

from typing import Any

from conductor.engine.delegated import tokens
from conductor.flow.context import Delegation, DelegationUnavailable
from persistence.contract import ExecutionStore
from persistence.records import NewDelegation


class AttemptDelegator:
    """Saves the delegations of one attempt (`TaskContext.delegator`)."""

    def __init__(self, store: ExecutionStore, execution_id: str, epoch: int, *, task: str,
                 attempt: int, callback_base: str | None = None) -> None:
        self._store = store
        self._execution_id = execution_id
        self._epoch = epoch
        self._task = task
        self._attempt = attempt
        self._callback_base = callback_base

    def delegate(self, deadline: float | None, on_deadline: str) -> Delegation:
        """Save a token row (and, for on_deadline="succeed", a timer row: the first of the
        completion and the timer wins) and return the handle with the token."""
        token, stored = tokens.new_token()
        rows = []
        if on_deadline == "succeed":
            rows.append(NewDelegation(self._task, self._attempt, stored, None))
            if deadline is not None:
                rows.append(NewDelegation(self._task, self._attempt, tokens.timer_key(),
                                          deadline))
        else:
            rows.append(NewDelegation(self._task, self._attempt, stored, deadline))
        self._store.save(self._execution_id, self._epoch, delegations=rows)
        return Delegation(task=self._task, attempt=self._attempt, deadline=deadline,
                          token=token, url=tokens.callback_url(self._callback_base, token))

    def sleep_until(self, when: float) -> None:
        """Save a timer row: the attempt succeeds once `when` has passed."""
        row = NewDelegation(self._task, self._attempt, tokens.timer_key(), when)
        self._store.save(self._execution_id, self._epoch, delegations=[row])

    def __reduce__(self) -> tuple[Any, ...]:
        # A process worker gets a stand-in that explains why it cannot delegate.
        return (UnavailableDelegator, (self._task,))

    def __repr__(self) -> str:
        return f"AttemptDelegator(task={self._task!r}, attempt={self._attempt})"


class UnavailableDelegator:
    """What a context carries in a process worker: delegating raises a clear error."""

    def __init__(self, task: str) -> None:
        self._task = task

    def delegate(self, deadline: float | None, on_deadline: str) -> Delegation:
        raise self._error()

    def sleep_until(self, when: float) -> None:
        raise self._error()

    def _error(self) -> DelegationUnavailable:
        return DelegationUnavailable(
            f"task {self._task!r} runs in a process worker, where delegations cannot be saved "
            "(the store stays in the conductor process); run it with the thread executor"
        )
