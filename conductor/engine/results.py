"""How a run of the runner ends."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from persistence.records import Failure


class RunState(str, enum.Enum):
    """How a run ended. ABANDONED: the runner stopped without saving a final word (aborted,
    fenced off, or the store became unavailable); `reason` and `error` say which."""

    SUCCESS = "SUCCESS"
    REVERTED = "REVERTED"
    FAILED = "FAILED"
    SUSPENDED = "SUSPENDED"
    PARKED = "PARKED"
    ABANDONED = "ABANDONED"


@dataclass
class RunResult:
    """The end of a run: state, the flow's result (SUCCESS) or failure (REVERTED/FAILED)."""

    state: RunState
    result: Any = None
    failure: Failure | None = None
    reason: str = ""
    error: BaseException | None = None
    execution_id: str = ""
    park_until: float | None = None
    """PARKED: the earliest open deadline of a delegated attempt (None: none)."""
    completed_seen: frozenset[int] = frozenset()
    """PARKED: ids of the delegation rows seen completed when the run decided to park; a row
    completed later must wake the parked job again (conductor.daemon.jobrun checks)."""


class EngineStalled(RuntimeError):
    """The core has nothing to run and nothing to wait for, yet the flow has not finished."""
