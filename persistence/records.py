"""Plain records of a saved execution: what a store returns and what its writers hand it.

They carry no database handles, so the engine's passive core can work on them without knowing
whether they came from SQLite, PostgreSQL or memory. Timestamps are float seconds since the Unix
epoch (UTC); results and inputs are JSON values.
"""

from __future__ import annotations

import enum
import traceback as traceback_module
from dataclasses import dataclass, field
from typing import Any, TypeAlias

JSONValue: TypeAlias = Any
"""A value that survives json.dumps/json.loads unchanged (checked by persistence.jsonvalue)."""


class ExecutionState(str, enum.Enum):
    """Where an execution is in its life."""

    PENDING = "PENDING"  # created, no task has run yet
    RUNNING = "RUNNING"  # an owner is driving it (or was, until it died)
    SUSPENDED = "SUSPENDED"  # stopped cleanly mid-run (shutdown, lost claim); resumable
    PARKED = "PARKED"  # waits only on delegated tasks; no conductor holds it
    SUCCESS = "SUCCESS"
    REVERTED = "REVERTED"  # failed (or cancelled) and every completed task was compensated
    FAILED = "FAILED"  # failed and a revert failed too

    @property
    def finished(self) -> bool:
        return self in FINISHED_EXECUTION_STATES


FINISHED_EXECUTION_STATES = frozenset(
    {ExecutionState.SUCCESS, ExecutionState.REVERTED, ExecutionState.FAILED}
)


class AtomState(str, enum.Enum):
    """State of one task (or retry/repeat controller) within an execution."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DELEGATED = "DELEGATED"  # handed to a third party; completes from outside
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVERTING = "REVERTING"
    REVERTED = "REVERTED"
    REVERT_FAILURE = "REVERT_FAILURE"
    IGNORED = "IGNORED"  # will not run in this execution (e.g. not reached before a failure)


class Intention(str, enum.Enum):
    """What the engine means to do with an atom next; saved so a resumed run continues the plan."""

    EXECUTE = "EXECUTE"
    REVERT = "REVERT"
    RETRY = "RETRY"
    IGNORE = "IGNORE"


@dataclass(frozen=True)
class Failure:
    """An exception as data: its qualified type name, message and traceback text.

    Never turned back into an exception object: the type is a name to show, not a class to import.
    """

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        kind = type(exc)
        name = kind.__qualname__ if kind.__module__ == "builtins" else (
            f"{kind.__module__}.{kind.__qualname__}"
        )
        text = "".join(traceback_module.format_exception(kind, exc, exc.__traceback__))
        return cls(type=name, message=str(exc), traceback=text)

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
        )

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass
class AtomRecord:
    """The saved state of one atom. A store write replaces the whole row for the atom's name."""

    name: str
    kind: str = "task"  # "task", "retry" or "repeat"
    state: AtomState = AtomState.PENDING
    intention: Intention = Intention.EXECUTE
    attempt: int = 0  # 1 for the first try; a resumed RUNNING atom re-runs with the same number
    result: JSONValue = None
    failure: Failure | None = None
    not_before: float | None = None  # earliest start of the next attempt (retry backoff)
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class ExecutionChange:
    """A new execution-level state, with the flow's result or failure when it is a final one."""

    state: ExecutionState
    result: JSONValue = None
    failure: Failure | None = None


@dataclass
class ExecutionRecord:
    """One execution of a job's flow, with its atoms keyed by name (empty when not loaded)."""

    id: str
    job_id: str
    flow_name: str
    flow_version: str
    inputs: dict[str, JSONValue]
    state: ExecutionState
    epoch: int
    owner: str | None
    created_at: float
    updated_at: float  # last take-over or execution-level change (not atom-only saves)
    finished_at: float | None = None
    result: JSONValue = None
    failure: Failure | None = None
    atoms: dict[str, AtomRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class Ownership:
    """One take-over of an execution: who, with which claim epoch, when."""

    epoch: int
    owner: str
    taken_at: float


@dataclass(frozen=True)
class NewDelegation:
    """A delegated atom's hand-off, saved in the same fenced transaction as its DELEGATED state.

    Only the hash of the completion token is stored; the token itself goes to the third party.
    """

    atom_name: str
    attempt: int
    token_hash: str
    deadline: float | None = None


@dataclass
class DelegationRecord:
    """A saved delegation. `outcome` is None until completed, then {"result": value} or
    {"failure": Failure.to_json()}."""

    id: int
    execution_id: str
    job_id: str
    atom_name: str
    attempt: int
    token_hash: str
    deadline: float | None
    created_at: float
    completed_at: float | None = None
    outcome: JSONValue = None
