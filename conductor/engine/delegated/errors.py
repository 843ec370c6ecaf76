"""Errors the runner records on a delegated attempt (the completion errors are in
conductor.delegation.errors).

Saved failures and retry policies know these classes by their qualified names
(`conductor.delegation.errors.DelegationFailed`, ...: a YAML policy may name them, and saved
executions hold them). They were defined there before the engine took them over, so each keeps
that `__module__`: the names saved data and policies use do not change, and
`conductor.delegation.errors` exports them (pickling finds them there).
"""

from __future__ import annotations

from conductor.flow.errors import TaskTimeout

PUBLIC_MODULE = "conductor.delegation.errors"


class DelegationFailed(Exception):
    """The third party completed the delegation with an error (the attempt fails with it; the
    task's retry policy applies, e.g. `Retry(on=[DelegationFailed])`)."""

    __module__ = PUBLIC_MODULE


class DelegationTimeout(TaskTimeout):
    """A delegation's deadline passed without a completion (a TaskTimeout: retry policies on
    TaskTimeout apply)."""

    __module__ = PUBLIC_MODULE
