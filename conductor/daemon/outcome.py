"""A job's outcome on the board, built in one place: for a run that just ended, and for an
execution a previous owner had already finished (it died between saving the end and completing
the job on the board)."""

from __future__ import annotations

from typing import Any

from persistence.records import Failure

OUTCOME_TRACEBACK_CHARS = 4000
"""The end of a failure's traceback kept in the outcome (the database keeps it whole)."""


def job_outcome(state: str, execution_id: str, *, result: Any, failure: Failure | None,
                conductor: str, finished_at: float) -> dict[str, Any]:
    """`{state, execution, result (SUCCESS only), failure (if any), conductor, finished_at}`
    for an execution that ended SUCCESS, REVERTED or FAILED."""
    outcome: dict[str, Any] = {"state": state, "execution": execution_id}
    if state == "SUCCESS":
        outcome["result"] = result
    if failure is not None:
        outcome["failure"] = _failure_json(failure.to_json())
    outcome["conductor"] = conductor
    outcome["finished_at"] = finished_at
    return outcome


def _failure_json(failure: dict[str, str]) -> dict[str, str]:
    """The failure with its traceback trimmed to its end."""
    text = failure.get("traceback", "")
    if len(text) > OUTCOME_TRACEBACK_CHARS:
        failure = {**failure, "traceback": "..." + text[-OUTCOME_TRACEBACK_CHARS:]}
    return failure
