"""The fields of a job document that conductors read and write, defined once.

The board (jobboard) owns a job document's schema (`flow`, `inputs`, `attempts`, ...; see
docs/jobboard.md) and merges any other field given to `release`, `park`, `wake` or `update`
into it. Conductors and their delegation callbacks keep their own fields there, named here:
`JobFields` says what each holds, the constants name them for readers and writers, and the
readers below say how a missing field reads. The readers do not validate yet (a field of the
wrong type reads as it always has); everything else in conductor uses them instead of strings.

Imports nothing from conductor, so that every layer of it may use this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypedDict

# -- the board's fields conductors read ---------------------------------------------------------
FLOW: Final = "flow"
"""Name of the flow to run (looked up in the conductor's own registry)."""
INPUTS: Final = "inputs"
"""The flow's inputs (a JSON object)."""
ATTEMPTS: Final = "attempts"
"""Claims taken so far: +1 by every claim, reset by a restore (the board keeps it)."""

# -- the conductor's own fields -------------------------------------------------------------
SETTLED_ATTEMPTS: Final = "settled_attempts"
"""Attempts up to this one ended without their owner dying (conductor/daemon/crashes.py)."""
PROGRESS: Final = "progress"
"""Tasks of the execution that had succeeded when an owner last found progress: more since
then resets the count of owners that died holding the job."""
DECLINES: Final = "declines"
"""Releases by conductors that lack the job's flow (dead-lettered at `max_declines`)."""
CANCEL: Final = "cancel"
"""A cancel request `{at, by}` (`conductor cancel`): a running job stops and reverts."""
COMPLETION: Final = "delegation_completed"
"""Nonce of the last delegation completion announced to a job that was not parked: its holder
is notified ("changed") and reads the delegation rows again."""
DEADLINE_PASSED: Final = "deadline_passed"
"""The deadline the deadline keeper judged passed when it woke the job: the runner counts
delegation deadlines up to it as passed, whatever its own clock says."""


class CancelRequest(TypedDict):
    """Who asked to cancel the job, and when (seconds since the epoch)."""

    at: float
    by: str


class JobFields(TypedDict, total=False):
    """The conductor's fields of a job document, as written (any subset at a time)."""

    settled_attempts: int
    progress: int
    declines: int
    cancel: CancelRequest
    delegation_completed: str
    deadline_passed: float


def updates(fields: JobFields) -> dict[str, Any]:
    """`fields` as the board's `updates` argument (merged into the document)."""
    return dict(fields)


def attempts(document: Mapping[str, Any]) -> int:
    return int(document.get(ATTEMPTS, 1))


def settled_attempts(document: Mapping[str, Any]) -> int:
    """0 unless an int (a bool or another type reads as 0)."""
    value = document.get(SETTLED_ATTEMPTS, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def progress(document: Mapping[str, Any]) -> int:
    return int(document.get(PROGRESS, 0))


def declines(document: Mapping[str, Any]) -> int:
    return int(document.get(DECLINES, 0))


def cancel_requested(document: Mapping[str, Any]) -> bool:
    return bool(document.get(CANCEL))


def cancel_request(document: Mapping[str, Any]) -> Any:
    """The cancel request as stored (None without one)."""
    return document.get(CANCEL)


def completion_marker(document: Mapping[str, Any]) -> Any:
    """The last completion nonce announced (None before any); compared, never interpreted."""
    return document.get(COMPLETION)


def deadline_passed(document: Mapping[str, Any]) -> float | None:
    """The deadline the keeper woke the job for, if it is a number."""
    floor = document.get(DEADLINE_PASSED)
    return float(floor) if isinstance(floor, (int, float)) else None
