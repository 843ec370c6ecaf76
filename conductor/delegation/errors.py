"""Errors of delegated tasks: what a completion gets, and (defined in the engine, exported here
under their saved names) what the runner records on an attempt.

The completion errors map one to one onto the front ends: UnknownDelegation (HTTP 404, CLI exit
1), DelegationAlreadyCompleted and its subclasses (HTTP 409, CLI exit 1), InvalidCompletion
(HTTP 400, CLI exit 2), StoreUnavailable / BoardUnavailable (HTTP 503, CLI exit 3). None of
them ever carries the token.
"""

from __future__ import annotations

from conductor.engine.delegated.errors import DelegationFailed, DelegationTimeout
from persistence.errors import DelegationAlreadyCompleted, UnknownDelegation


class TaskFinished(DelegationAlreadyCompleted):
    """The delegated task already has an outcome (completed through another of its tokens,
    timed out for good, or its execution finished): every token of it answers this."""


class AttemptSuperseded(DelegationAlreadyCompleted):
    """An error reported with the token of an attempt that was already given up (it timed out
    and a retry is under way): it would fail the wrong attempt, so it is not recorded. A RESULT
    sent with such a token is accepted and completes the task."""


class InvalidCompletion(ValueError):
    """The completion itself is malformed (not exactly one of result / error, an empty error
    message, a result that is not JSON)."""


__all__ = [
    "AttemptSuperseded",
    "DelegationAlreadyCompleted",
    "DelegationFailed",
    "DelegationTimeout",
    "InvalidCompletion",
    "TaskFinished",
    "UnknownDelegation",
]
