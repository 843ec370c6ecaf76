"""Read jobs wherever they are: pending (claimed or not), parked, completed or trashed.

Reads are pipelined (kazoo async) so a listing costs one round trip per stage, not per job. A
garbage document met on the way is moved to the trash with the reason and listed as TRASHED.
"""

from __future__ import annotations

from typing import Any

from kazoo.exceptions import NoNodeError

from jobboard.errors import JobNotFound
from jobboard.model import Job, JobState
from jobboard.protocol.context import BoardContext
from jobboard.protocol.deadletter import dead_letter
from jobboard.protocol.documents import (
    DocumentError,
    decode_job,
    decode_object,
    raw_bytes,
    validate_job,
)
from jobboard.protocol.naming import check_job_id

_LOCATE_ATTEMPTS = 3


def _result(async_result: Any) -> tuple[bytes, Any] | None:
    """(data, stat) of an async get, or None for a missing node."""
    try:
        value: tuple[bytes, Any] = async_result.get()
        return value
    except NoNodeError:
        return None


class Reader:
    """Job lookups and listings of one board."""

    def __init__(self, ctx: BoardContext) -> None:
        self.ctx = ctx

    def get(self, job_id: str) -> Job:
        """The job in whatever state it is; JobNotFound if it is nowhere (or was purged)."""
        check_job_id(job_id)
        # Moves between areas are atomic but these reads are not one snapshot: a job moving
        # while we read can be missed once, so look again before saying it does not exist.
        for _ in range(_LOCATE_ATTEMPTS):
            job = self.ctx.read(self._locate, job_id)
            if job is not None:
                return job
        raise JobNotFound(job_id, "not on the board, parked, completed nor in the trash")

    def _locate(self, job_id: str) -> Job | None:
        client, paths = self.ctx.client, self.ctx.paths
        reads = [
            client.get_async(path)
            for path in (
                paths.job(job_id),
                paths.claim(job_id),
                paths.parked_job(job_id),
                paths.outcome(job_id),
                paths.trashed(job_id),
            )
        ]
        job, claim, parked, outcome, trashed = (_result(read) for read in reads)
        if job is not None:
            return self._pending(job_id, job, claim)
        if parked is not None:
            return self._parked(job_id, parked)
        if outcome is not None:
            return self._completed(job_id, outcome[0])
        if trashed is not None:
            return self._trashed(job_id, trashed[0])
        return None

    def _pending(
        self, job_id: str, job: tuple[bytes, Any], claim: tuple[bytes, Any] | None
    ) -> Job:
        data, stat = job
        try:
            document = decode_job(job_id, data)
        except DocumentError as error:
            path = self.ctx.paths.job(job_id)
            dead_letter(self.ctx, job_id, path, data, stat.version, reason=str(error))
            return Job(job_id, JobState.TRASHED, None, reason=str(error), raw=data)
        if claim is None:
            return Job(job_id, JobState.UNCLAIMED, document)
        try:
            owner: dict[str, Any] | None = decode_object(claim[0])
        except DocumentError:
            owner = None
        since = owner.get("since") if owner else None
        return Job(
            job_id,
            JobState.CLAIMED,
            document,
            owner=owner,
            since=since if isinstance(since, (int, float)) else None,
            epoch=claim[1].czxid,
        )

    def _parked(self, job_id: str, parked: tuple[bytes, Any]) -> Job:
        data, stat = parked
        try:
            entry = decode_object(data)
            document = validate_job(job_id, entry.get("job"))
        except DocumentError as error:
            path = self.ctx.paths.parked_job(job_id)
            dead_letter(
                self.ctx, job_id, path, data, stat.version, reason=f"parked entry: {error}"
            )
            return Job(job_id, JobState.TRASHED, None, reason=str(error), raw=data)
        until = entry.get("until")
        return Job(
            job_id,
            JobState.PARKED,
            document,
            until=until if isinstance(until, (int, float)) else None,
        )

    @staticmethod
    def _completed(job_id: str, data: bytes) -> Job:
        try:
            entry = decode_object(data)
        except DocumentError as error:
            return Job(job_id, JobState.COMPLETED, None, reason=f"unreadable outcome: {error}")
        document = entry.get("job")
        outcome = entry.get("outcome")
        return Job(
            job_id,
            JobState.COMPLETED,
            document if isinstance(document, dict) else None,
            outcome=outcome if isinstance(outcome, dict) else None,
        )

    @staticmethod
    def _trashed(job_id: str, data: bytes) -> Job:
        try:
            entry = decode_object(data)
        except DocumentError as error:
            return Job(job_id, JobState.TRASHED, None, reason=f"unreadable trash entry: {error}")
        document = entry.get("job")
        return Job(
            job_id,
            JobState.TRASHED,
            document if isinstance(document, dict) else None,
            reason=str(entry.get("reason")),
            raw=raw_bytes(entry),
        )

    # -- listings ----------------------------------------------------------------------------
    def pending_and_parked(self) -> list[Job]:
        """Every job on the board (UNCLAIMED, CLAIMED, PARKED), priority first then FIFO."""
        return self.ctx.read(self._list_board)

    def _list_board(self) -> list[Job]:
        client, paths = self.ctx.client, self.ctx.paths
        listings = [client.get_children_async(p) for p in (paths.jobs, paths.claims, paths.parked)]
        job_ids, claim_ids, parked_ids = (listing.get() for listing in listings)
        claimed = set(claim_ids)
        job_reads = {job_id: client.get_async(paths.job(job_id)) for job_id in job_ids}
        claim_reads = {
            job_id: client.get_async(paths.claim(job_id)) for job_id in job_ids if job_id in claimed
        }
        parked_reads = {job_id: client.get_async(paths.parked_job(job_id)) for job_id in parked_ids}
        jobs: list[Job] = []
        for job_id, read in job_reads.items():
            job = _result(read)
            if job is not None:
                claim = _result(claim_reads[job_id]) if job_id in claim_reads else None
                jobs.append(self._pending(job_id, job, claim))
        for job_id, read in parked_reads.items():
            parked = _result(read)
            if parked is not None:
                jobs.append(self._parked(job_id, parked))
        return sorted(
            (job for job in jobs if job.state != JobState.TRASHED), key=lambda job: job.id
        )

    def parked(self) -> list[Job]:
        """Parked jobs with their `until`, priority first then FIFO."""
        return [job for job in self.pending_and_parked() if job.state == JobState.PARKED]

    def trashed(self) -> list[Job]:
        """Every dead letter (with its reason), ordered by job id."""
        return self.ctx.read(self._list_trash)

    def _list_trash(self) -> list[Job]:
        client = self.ctx.client
        names = client.get_children(self.ctx.paths.trash)
        reads = {name: client.get_async(self.ctx.paths.trashed(name)) for name in names}
        jobs = []
        for name, read in sorted(reads.items()):
            found = _result(read)
            if found is not None:
                jobs.append(self._trashed(name, found[0]))
        return jobs

    def get_trashed(self, job_id: str) -> Job:
        """One dead letter, with the reason (and raw bytes for a garbage document)."""
        check_job_id(job_id)
        path = self.ctx.paths.trashed(job_id)
        found = self.ctx.read(lambda: _result(self.ctx.client.get_async(path)))
        if found is None:
            raise JobNotFound(job_id, "not in the trash")
        return self._trashed(job_id, found[0])
