"""Completing delegated tasks from outside (CLI, Python, HTTP) and enforcing their deadlines.
See docs/delegation.md. The runner's side (tokens, issuing, settling attempts) is in
`conductor.engine.delegated`.

Inside a task (conductor.flow.TaskContext):

    handle = context.delegate(deadline=time.time() + 3600)   # saved before the token exists
    send_to_third_party(handle.token, handle.url)            # the token is a secret
    return Delegated()                                       # the job parks; no conductor waits

From outside:

    from conductor.delegation import Callbacks
    Callbacks(store, board).complete(token, result={"approved": True})   # or error="..."

The names below are loaded on first use (PEP 562), so importing one submodule does not load
ZooKeeper or HTTP code it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor.delegation.callbacks import (
        Callbacks,
        CompletionReport,
        completion_outcome,
        nudge,
    )
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

_HOMES = {
    "AttemptSuperseded": "conductor.delegation.errors",
    "CallbackServer": "conductor.delegation.webhook",
    "Callbacks": "conductor.delegation.callbacks",
    "CompletionReport": "conductor.delegation.callbacks",
    "DeadlineKeeper": "conductor.delegation.keeper",
    "Delegated": "conductor.flow.context",
    "Delegation": "conductor.flow.context",
    "DelegationAlreadyCompleted": "conductor.delegation.errors",
    "DelegationFailed": "conductor.delegation.errors",
    "DelegationTimeout": "conductor.delegation.errors",
    "DelegationUnavailable": "conductor.flow.context",
    "InvalidCompletion": "conductor.delegation.errors",
    "TaskFinished": "conductor.delegation.errors",
    "UnknownDelegation": "conductor.delegation.errors",
    "completion_outcome": "conductor.delegation.callbacks",
    "nudge": "conductor.delegation.callbacks",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
