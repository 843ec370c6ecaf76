"""What the passive core hands the runner: invocations to dispatch and decisions to save."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from conductor.engine.delegated.tokens import redact
from conductor.flow.retry import exception_kinds
from conductor.flow.task import Task
from persistence.records import AtomRecord, ExecutionChange, Failure


class Action(str, enum.Enum):
    """Which of a task's functions an invocation calls (the task ledger records the value)."""

    EXECUTE = "execute"
    REVERT = "revert"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Invocation:
    """One call to make: `action` of atom `name`'s task, attempt `attempt`, with `kwargs`
    (and, for revert, the saved `result`)."""

    name: str
    action: Action
    attempt: int
    task: Task
    kwargs: dict[str, Any]
    result: Any = None
    timeout: float | None = None


@dataclass(frozen=True)
class AttemptFailure:
    """A failed attempt as data: the Failure to save, the names its exception classes answer
    to (matched by retry policies), and whether retrying could help at all.

    The Failure is redacted on construction (`redacted_failure`): whatever a task's exception
    quotes (a delegation token, its callback URL) is saved, put on the board and logged
    without the token."""

    failure: Failure
    kinds: tuple[str, ...] = ()
    retryable: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "failure", redacted(self.failure))

    @classmethod
    def from_exception(cls, exc: BaseException, *, retryable: bool = True) -> AttemptFailure:
        return cls(Failure.from_exception(exc), exception_kinds(exc), retryable)


def redacted(failure: Failure) -> Failure:
    """`failure` with anything token-shaped scrubbed from its message and traceback
    (`conductor.engine.delegated.tokens.redact`); persistence saves failures as given."""
    message, text = redact(failure.message), redact(failure.traceback)
    if (message, text) == (failure.message, failure.traceback):
        return failure
    return replace(failure, message=message, traceback=text)


def redacted_failure(exc: BaseException) -> Failure:
    """The Failure to save for `exc`, without delegation tokens."""
    return redacted(Failure.from_exception(exc))


@dataclass
class Decision:
    """The core's answer to "what now?".

    Save `records` (and `execution`, when set) in one fenced write, THEN dispatch `starts`.
    `wake_at`: the earliest time a delayed retry becomes runnable. `finished`: the execution
    reached its final state (in `execution`). `only_delegated`: nothing can run or is running
    except delegated tasks (the execution may be parked).
    """

    records: list[AtomRecord] = field(default_factory=list)
    starts: list[Invocation] = field(default_factory=list)
    execution: ExecutionChange | None = None
    wake_at: float | None = None
    finished: bool = False
    only_delegated: bool = False
