"""Which earlier owners of a job died holding it, and which only lost their claim.

The board counts every claim of a job in `attempts`. A conductor records in the job's
`settled_attempts` the highest attempt known to have ended without its owner dying: a clean end
(complete, release, park, decline) writes it with the claim, and an owner that *lost* its claim
while it lived on (its ZooKeeper session expired in an outage or a partition, or it was fenced off
by a newer owner) writes it afterwards with `settle`. The owners between `settled_attempts` and
the current claim are the ones that died holding the job: the poison-pill count.

A lost owner's settlement may arrive after the next owner has counted, so before dead-lettering
a job the next owner also asks whether the earlier owners are alive right now (`alive`): the
same process (name, host and pid, and a start before its take-over) registered under
`<root>/conductors` did not crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from conductor import jobfields
from jobboard.board import JobBoard
from jobboard.errors import BoardUnavailable
from jobboard.recipes import MonotonicField
from persistence.records import Ownership

log = logging.getLogger(__name__)


def settle(board: JobBoard, job_id: str, attempt: int, *, until: float,
           stopping: Callable[[], bool] = lambda: False) -> bool:
    """Raise the job's `settled_attempts` to `attempt`, never lowering it.

    A version-checked read-modify-write of the job document (jobboard.recipes.MonotonicField),
    so a late settlement never undoes a newer owner's (higher) one; retried on conflicts, and
    while ZooKeeper is unreachable until the monotonic time `until` or `stopping()`. True once
    the document says at least `attempt`; False when the job has left `jobs/` (completed, parked
    or trashed: the count starts again from the document that comes back, if any), when the job
    is an earlier incarnation's (a restored job counts from 0 again: `attempts` below
    `attempt`), or when the deadline passed.
    """
    field = MonotonicField(board, job_id, jobfields.SETTLED_ATTEMPTS, ceiling=jobfields.ATTEMPTS)
    try:
        return field.raise_to(attempt, until=until, stopping=stopping)
    except BoardUnavailable as exc:
        log.warning("job %s: could not record that attempt %d ended without a crash: %s",
                    job_id, attempt, exc)
        return False


def alive(owner: Ownership, members: Iterable[dict[str, Any]]) -> bool:
    """Whether the process that took `owner` over is registered as a conductor right now.

    Presence documents carry the conductor's name, host, pid and when its board started; the
    ownership row carries "name@host:pid" and when it took over. A process started after the
    take-over is another incarnation (a restarted container may reuse the pid): not proof."""
    for member in members:
        identity = f"{member.get('id')}@{member.get('host')}:{member.get('pid')}"
        started = member.get("started")
        if (identity == owner.owner and isinstance(started, (int, float))
                and started <= owner.taken_at):
            return True
    return False
