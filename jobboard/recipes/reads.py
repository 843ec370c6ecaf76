"""Reads of board entries that the board's own API does not hand out whole: the deadlines of
parked jobs (for whoever enforces them) and an outcome entry as stored (for audits)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import KazooException, NoNodeError

from jobboard.errors import JobNotFound
from jobboard.protocol.context import board_errors
from jobboard.protocol.documents import decode_object

if TYPE_CHECKING:
    from jobboard.board import JobBoard


@dataclass
class Deadlines:
    """What `parked_deadlines` found: each parked job's `until` (None: no deadline, or an
    unreadable entry), and the jobs whose entry could not be read now (ZooKeeper trouble).
    Jobs no longer parked are in neither."""

    until: dict[str, float | None] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def parked_deadlines(board: JobBoard, job_ids: Iterable[str]) -> Deadlines:
    """Read the `until` of parked jobs, in one pipelined round trip."""
    client = board.client
    reads = {job_id: client.get_async(board.paths.parked_job(job_id)) for job_id in job_ids}
    found = Deadlines()
    for job_id, read in reads.items():
        try:
            data, _ = read.get()
        except NoNodeError:
            continue
        except KazooException:
            found.failed.append(job_id)
            continue
        found.until[job_id] = _until(data)
    return found


def _until(data: bytes) -> float | None:
    """The `until` of a parked entry (None: no deadline, or unreadable)."""
    try:
        until = json.loads(data).get("until")
    except (ValueError, AttributeError):
        return None
    if isinstance(until, bool) or not isinstance(until, (int, float)):
        return None
    return float(until)


def outcome_entry(board: JobBoard, job_id: str) -> dict[str, Any]:
    """The outcome entry of a completed job as stored (docs/jobboard.md: `{job, outcome,
    completed_at, claim: {epoch, owner, token}}`); JobNotFound when it has none."""
    with board_errors(f"read the outcome of job {job_id}"):
        try:
            data, _ = board.client.get(board.paths.outcome(job_id))
        except NoNodeError:
            raise JobNotFound(job_id, "no outcome entry") from None
    return decode_object(data)
