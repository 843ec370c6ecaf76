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

`CrashPolicy` is the rule a JobRun applies to its claim: what counts as a crash, the threshold
(`max_crashes`), progress that resets the count, and the alive check before dead-lettering.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from conductor import jobfields
from jobboard.board import JobBoard
from jobboard.errors import BoardUnavailable
from jobboard.recipes import MonotonicField
from persistence.contract import ExecutionStore
from persistence.records import AtomState, ExecutionRecord, Ownership

CONFIRM_SETTLE_FOR = 10.0
"""Seconds the owner that found an earlier owner alive tries to record that on the job."""

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


@dataclass(frozen=True)
class Verdict:
    """What the count of owners that died holding a job says about the current claim."""

    document: dict[str, Any]
    """The job document with what the count learnt (a higher `settled_attempts`)."""
    progress: int | None = None
    """Tasks done, more than the document's `progress`: record it (the count starts again)."""
    poison: str | None = None
    """The job is a poison pill: dead-letter it with this reason."""


class CrashPolicy:
    """The poison-pill rule: a job whose last `max_crashes` owners all died holding it, with no
    task succeeding in between, is dead-lettered.

    The owners that died are the attempts after `settled_attempts` and before the current claim
    (see the module docstring). Tasks that succeeded since the count was last made reset it. At
    the threshold, the count is made again with late news before it condemns the job: the job
    document read again (a lost owner's settlement), then the earlier owners of the execution,
    newest first, until one is alive right now (`alive`): that one did not crash, and the
    attempt it held is recorded as settled.
    """

    def __init__(self, board: JobBoard, store: ExecutionStore, max_crashes: int,
                 log: logging.Logger | logging.LoggerAdapter[Any] = log) -> None:
        self.board = board
        self.store = store
        self.max_crashes = max_crashes
        self.log = log

    def crashes(self, document: dict[str, Any]) -> int:
        """Owners before the current claim that died holding the job since it last ended a
        claim cleanly, made progress, or lost its claim and lived on."""
        return jobfields.attempts(document) - 1 - jobfields.settled_attempts(document)

    def at_threshold(self, document: dict[str, Any]) -> bool:
        return self.crashes(document) >= self.max_crashes

    def judge(self, job_id: str, epoch: int, document: dict[str, Any],
              execution: ExecutionRecord | None) -> Verdict:
        """The verdict on the claim of `epoch` with this `document`; `execution`: the job's
        execution, None when none was ever opened (its flow killed every builder). BoardError
        when the board cannot be read for the late news (give the job back: never condemn it
        on a guess); the store's errors as they come."""
        count = self.crashes(document)
        if count < 1:
            return Verdict(document)
        if execution is not None:
            done = sum(1 for atom in execution.atoms.values()
                       if atom.state is AtomState.SUCCESS)
            if done > jobfields.progress(document):
                return Verdict(document, progress=done)
        limit = self.max_crashes
        if count >= limit:
            document, count = self._confirm(job_id, epoch, document, execution, count)
        if count < limit:
            return Verdict(document)
        if execution is None:
            return Verdict(document, poison=(
                f"{count} owners in a row died holding this job before any execution of it "
                f"was opened, i.e. while building its flow (max_crashes={limit})"))
        return Verdict(document, poison=(
            f"{count} owners in a row died holding this job without any task succeeding "
            f"(max_crashes={limit}); last owners ran it on execution {execution.id}"))

    def _confirm(self, job_id: str, epoch: int, document: dict[str, Any],
                 execution: ExecutionRecord | None, counted: int) -> tuple[dict[str, Any], int]:
        """The count once late news is in: an owner that lost its claim records that after
        the fact (it may not have yet: read the job again), and an owner alive right now did
        not die holding the job. The count runs from the newest claim back to the first owner
        proven alive; that one is recorded as settled."""
        fresh = self.board.get(job_id).document or {}
        members = self.board.members("conductors")
        attempts = jobfields.attempts(document)
        if fresh.get(jobfields.ATTEMPTS) == attempts and \
                jobfields.settled_attempts(fresh) > jobfields.settled_attempts(document):
            document = {**document,
                        jobfields.SETTLED_ATTEMPTS: jobfields.settled_attempts(fresh)}
            counted = self.crashes(document)
            if counted < max(1, self.max_crashes):
                return document, counted
        if execution is None:  # no owner got as far as opening it: none left its identity
            return document, counted
        earlier = [o for o in self.store.owners(execution.id) if o.epoch < epoch][-counted:]
        for newer, owner in enumerate(reversed(earlier)):
            if alive(owner, members):
                self.log.info("earlier owner %s is alive: it lost its claim, it did not crash",
                              owner.owner)
                attempt = attempts - 1 - newer
                settle(self.board, job_id, attempt, until=time.monotonic() + CONFIRM_SETTLE_FOR)
                return {**document, jobfields.SETTLED_ATTEMPTS: attempt}, newer
        return document, counted
