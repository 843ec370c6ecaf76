"""What a running task may know about its attempt: ids, its idempotency key, a cancel flag,
and the means to delegate its work to a third party (see docs/delegation.md)."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class CancelFlag:
    """Set when the execution is cancelled, or when the run gives up on the attempts in flight
    (abort, fenced off, store unavailable, a stop whose grace period ran out): a long task may
    check it and return early. A graceful stop does not set it (attempts finish normally).

    Inside a process-pool worker the flag is a fresh, never-set copy: cancellation is not
    forwarded across processes.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or `timeout` seconds pass; returns whether it is set."""
        return self._event.wait(timeout)

    def __reduce__(self) -> tuple[Any, ...]:
        return (CancelFlag, ())


class DelegationUnavailable(RuntimeError):
    """This attempt cannot delegate: it runs without a store to save the delegation in (a
    context made by hand) or in a process worker (the store is not forwarded across processes:
    run delegating tasks with the thread executor)."""


@dataclass(frozen=True)
class Delegation:
    """A delegation saved for this attempt: hand `token` (or `url`, the callback URL when an
    HTTP endpoint is configured) to the third party, then return `Delegated()`.

    The token is a secret (256 random bits; only its hash is stored): it is kept out of the
    repr, so logging this object never leaks it.
    """

    task: str
    attempt: int
    deadline: float | None
    token: str = field(repr=False)
    url: str | None = field(default=None, repr=False)


class Delegator(Protocol):
    """Saves delegations for one attempt (the runner gives each context its own)."""

    def delegate(self, deadline: float | None, on_deadline: str) -> Delegation:
        ...

    def sleep_until(self, when: float) -> None:
        ...


ON_DEADLINE = ("fail", "succeed")


@dataclass(frozen=True)
class TaskContext:
    """Passed to a task only if it asks (a parameter named `context` or annotated TaskContext).

    `idempotency_key` is f"{execution_id}:{task}:{attempt}": stable across a crash and resume
    of the same attempt (the at-least-once re-run), different for every new attempt.
    """

    execution_id: str
    job_id: str
    task: str
    attempt: int
    cancel: CancelFlag = field(default_factory=CancelFlag, compare=False)
    logger: logging.Logger = field(
        default_factory=lambda: logging.getLogger("conductor.task"), compare=False
    )
    delegator: Delegator | None = field(default=None, compare=False, repr=False)

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.task}:{self.attempt}"

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def delegate(self, deadline: float | None = None, *, on_deadline: str = "fail"
                 ) -> Delegation:
        """Save a delegation of this attempt (fenced, before the token exists anywhere else)
        and return its handle; then hand the token out and `return Delegated()`.

        `deadline`: seconds since the epoch. When it passes without a completion the attempt
        fails with DelegationTimeout (`on_deadline="fail"`, the retry policy applies) or
        succeeds with the result None (`on_deadline="succeed"`: "wait for a person, at most
        until then"). Every token issued for a task stays valid until the task has an outcome.
        """
        if on_deadline not in ON_DEADLINE:
            raise ValueError(f"on_deadline must be 'fail' or 'succeed', got {on_deadline!r}")
        if deadline is not None:
            deadline = _when(deadline, "deadline")
        elif on_deadline == "succeed":
            raise ValueError("on_deadline='succeed' needs a deadline")
        return self._delegator().delegate(deadline, on_deadline)

    def sleep_until(self, when: float) -> Delegated:
        """A durable sleep: save a timer and return the marker to return. The attempt succeeds
        (result None) once `when` (seconds since the epoch) has passed; meanwhile the job is
        parked and no conductor holds it."""
        self._delegator().sleep_until(_when(when, "when"))
        return Delegated()

    def _delegator(self) -> Delegator:
        if self.delegator is None:
            raise DelegationUnavailable(
                f"task {self.task!r} cannot delegate here: no delegation support in this "
                "context (a process worker, or a context made by hand); run delegating tasks "
                "with the thread executor"
            )
        return self.delegator


def _when(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds since the epoch, "
                         f"got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Delegated:
    """Returned by a task that handed its work to a third party: the attempt is saved
    DELEGATED and completes from outside (see the delegation API). `deadline`: seconds since
    the epoch after which the attempt fails with DelegationTimeout unless completed (None: no
    deadline beyond those of its delegations); the runner saves it with the DELEGATED state."""

    deadline: float | None = None
