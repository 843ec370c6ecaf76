"""Producer side: wait for a job's outcome (watch-driven), and purge old outcomes.

`wait` sets exists-watches on outcomes/<id> and trash/<id> and sleeps on an event until one
fires: no polling. Outcomes are kept until purged; `purge_outcomes` deletes those completed before
a cutoff together with the idempotency key of their job (the key is then free again). It reads
only outcomes whose job was *created* before the cutoff (the id carries the creation time), so
it is cheap when little is due.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kazoo.exceptions import BadVersionError, NoNodeError
from kazoo.protocol.states import WatchedEvent

from jobboard.errors import JobNotFound, WaitTimeout
from jobboard.model import JobState, Outcome
from jobboard.protocol.context import TRANSIENT, BoardContext, commit, first_failure
from jobboard.protocol.documents import DocumentError, decode_object
from jobboard.protocol.naming import JOB_ID_PATTERN, check_job_id


class Outcomes:
    """wait / purge for one board."""

    def __init__(self, ctx: BoardContext) -> None:
        self.ctx = ctx

    def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        """Block until the job is completed or trashed; WaitTimeout after `timeout` seconds.

        JobNotFound if the job is nowhere on the board (never posted, or its outcome purged)."""
        check_job_id(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        paths, client = self.ctx.paths, self.ctx.client
        while True:
            fired = threading.Event()

            def watcher(event: WatchedEvent, fired: threading.Event = fired) -> None:
                fired.set()

            try:
                done = client.exists_async(paths.outcome(job_id), watch=watcher)
                dead = client.exists_async(paths.trashed(job_id), watch=watcher)
                pending = client.exists_async(paths.job(job_id))
                parked = client.exists_async(paths.parked_job(job_id))
                if done.get() is not None or dead.get() is not None:
                    result = self._finished(job_id)
                    if result is not None:
                        return result
                elif pending.get() is None and parked.get() is None and not fired.is_set():
                    raise JobNotFound(job_id, "not on the board and no outcome (purged?)")
            except TRANSIENT:
                fired.set()  # watches are gone with the connection: look again once connected
                self.ctx.wait_connected(self.ctx.deadline() if deadline is None else deadline)
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(job_id, timeout or 0.0)
            fired.wait(remaining)

    def _finished(self, job_id: str) -> Outcome | None:
        for path, state in (
            (self.ctx.paths.outcome(job_id), JobState.COMPLETED),
            (self.ctx.paths.trashed(job_id), JobState.TRASHED),
        ):
            try:
                data, _ = self.ctx.client.get(path)
            except NoNodeError:
                continue
            try:
                entry = decode_object(data)
            except DocumentError as error:
                entry = {"reason": f"unreadable entry: {error}"}
            document = entry.get("job")
            outcome = entry.get("outcome")
            finished = entry.get("completed_at", entry.get("trashed_at"))
            return Outcome(
                job_id=job_id,
                state=state,
                outcome=outcome if isinstance(outcome, dict) else None,
                reason=None if state == JobState.COMPLETED else str(entry.get("reason")),
                document=document if isinstance(document, dict) else None,
                finished_at=finished if isinstance(finished, (int, float)) else None,
            )
        return None

    # -- retention ---------------------------------------------------------------------------
    def purge(self, older_than: float) -> int:
        """Delete outcomes completed more than `older_than` seconds ago (and their keys)."""
        cutoff = time.time() - older_than
        cutoff_ms = int(cutoff * 1000)
        names = self.ctx.read(self.ctx.client.get_children, self.ctx.paths.outcomes)
        due = []
        for name in names:
            match = JOB_ID_PATTERN.match(name)
            # Completed after it was created: a job created after the cutoff cannot be due.
            if match is None or int(match.group(2)) <= cutoff_ms:
                due.append(name)
        reads = {name: self.ctx.client.get_async(self.ctx.paths.outcome(name)) for name in due}
        purged = 0
        for name, read in reads.items():
            try:
                data, stat = read.get()
            except NoNodeError:
                continue
            try:
                entry = decode_object(data)
            except DocumentError:
                entry = {}
            completed = entry.get("completed_at")
            if isinstance(completed, (int, float)) and completed > cutoff:
                continue
            if self._purge_one(name, stat.version, entry):
                purged += 1
        return purged

    def _purge_one(self, job_id: str, version: int, entry: dict[str, Any]) -> bool:
        paths, client = self.ctx.paths, self.ctx.client
        job = entry.get("job")
        key = job.get("key") if isinstance(job, dict) else None
        key_version = None
        if isinstance(key, str):
            try:
                data, key_stat = client.get(paths.key(key))
                if data.decode("utf-8", "replace") == job_id:
                    key_version = key_stat.version
            except (NoNodeError, ValueError):
                key_version = None

        def build(tx: Any) -> None:
            tx.delete(paths.outcome(job_id), version=version)
            if key_version is not None:
                tx.delete(paths.key(str(key)), version=key_version)

        failure = first_failure(self.ctx.read(commit, client, build))
        if failure is None:
            return True
        if isinstance(failure[1], (NoNodeError, BadVersionError)):
            return False
        raise failure[1]
