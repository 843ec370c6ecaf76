"""Delegated long-running tasks: hand work to a third party, park the job, complete it from
outside (CLI, Python, HTTP), enforce deadlines. See docs/delegation.md.

Inside a task (conductor.flow.TaskContext):

    handle = context.delegate(deadline=time.time() + 3600)   # saved before the token exists
    send_to_third_party(handle.token, handle.url)            # the token is a secret
    return Delegated()                                       # the job parks; no conductor waits

From outside:

    from conductor.delegation import Callbacks
    Callbacks(store, board).complete(token, result={"approved": True})   # or error="..."
"""

from conductor.delegation.callbacks import Callbacks, CompletionReport, completion_outcome, nudge
from conductor.delegation.errors import (
    AttemptSuperseded,
    DelegationAlreadyCompleted,
    DelegationFailed,
    DelegationTimeout,
    InvalidCompletion,
    TaskFinished,
    UnknownDelegation,
)
from conductor.delegation.keeper import DeadlineKeeper
from conductor.delegation.webhook import CallbackServer
from conductor.flow.context import Delegated, Delegation, DelegationUnavailable

__all__ = [
    "AttemptSuperseded",
    "CallbackServer",
    "Callbacks",
    "CompletionReport",
    "DeadlineKeeper",
    "Delegated",
    "Delegation",
    "DelegationAlreadyCompleted",
    "DelegationFailed",
    "DelegationTimeout",
    "DelegationUnavailable",
    "InvalidCompletion",
    "TaskFinished",
    "UnknownDelegation",
    "completion_outcome",
    "nudge",
]
