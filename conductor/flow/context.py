"""What a running task may know about its attempt: ids, its idempotency key, a cancel flag."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any


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

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.task}:{self.attempt}"

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()


@dataclass(frozen=True)
class Delegated:
    """Returned by a task that handed its work to a third party: the attempt is saved
    DELEGATED and completes from outside (see the delegation API). `deadline`: seconds since
    the epoch after which the delegation counts as timed out (None: no deadline)."""

    deadline: float | None = None
