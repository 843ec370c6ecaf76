"""Operator and callback operations that need no claim: trash, restore, wake, update.

Each is one version-checked multi-op retried on conflict, so it never races a claim: a job that
gets claimed meanwhile changes version (every claim raises `attempts`) and the retry sees it.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from jobboard.errors import (
    AlreadyClaimed,
    BoardError,
    ClaimConflict,
    InvalidInput,
    InvalidJob,
    JobNotFound,
)
from jobboard.model import Job, JobState
from jobboard.protocol.context import BoardContext, commit, first_failure
from jobboard.protocol.deadletter import dead_letter
from jobboard.protocol.documents import (
    DocumentError,
    decode_job,
    decode_object,
    encode,
    encode_job,
    merge_updates,
    trash_entry,
    validate_job,
)
from jobboard.protocol.naming import check_job_id

MAX_ATTEMPTS = 8
_TOKEN = re.compile(r"[0-9a-f]{32}")


def _hold_token(owner: dict[str, Any] | None) -> str | None:
    """The token of a claim's owner record, if it is one this board could have written."""
    token = owner.get("token") if owner else None
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


class _Retry(Exception):
    """Something changed between read and write; read again."""


class Admin:
    """trash / restore / wake / update of one board."""

    def __init__(self, ctx: BoardContext) -> None:
        self.ctx = ctx

    def _loop(
        self, job_id: str, attempt: Callable[[], Any], verify: Callable[[], Any] | None = None
    ) -> Any:
        """Run `attempt` until no conflict; after a connection loss `verify()` tells whether
        it was applied (its result) or not (None)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return self.ctx.write(attempt, verify or (lambda: None))
            except _Retry:
                continue
        raise ClaimConflict(f"job {job_id} kept changing; operation not applied")

    def _has_token(self, path: str, token: str) -> bool | None:
        found = self._get(path)
        try:
            return True if found and decode_object(found[0]).get("token") == token else None
        except DocumentError:
            return None

    def _get(self, path: str) -> tuple[bytes, Any] | None:
        try:
            found: tuple[bytes, Any] = self.ctx.client.get(path)
            return found
        except NoNodeError:
            return None

    def _commit(self, build: Callable[[Any], None], conflicts: tuple[type, ...]) -> None:
        failure = first_failure(commit(self.ctx.client, build))
        if failure is None:
            return
        _, error = failure
        if isinstance(error, conflicts):
            raise _Retry()
        raise error

    # -- trash -------------------------------------------------------------------------------
    def trash(self, job_id: str, reason: str, force: bool = False) -> None:
        """Dead-letter a pending or parked job; a job claimed by someone else is refused unless
        `force` (its holder then loses the claim)."""
        check_job_id(job_id)
        token = uuid.uuid4().hex
        self._loop(
            job_id,
            lambda: self._trash_once(job_id, reason, force, token),
            lambda: self._has_token(self.ctx.paths.trashed(job_id), token),
        )

    def _trash_once(self, job_id: str, reason: str, force: bool, token: str) -> bool:
        paths = self.ctx.paths
        found = self._get(paths.job(job_id))
        origin, origin_path = "jobs", paths.job(job_id)
        if found is None:
            found = self._get(paths.parked_job(job_id))
            origin, origin_path = "parked", paths.parked_job(job_id)
        if found is None:
            raise JobNotFound(job_id, "neither pending nor parked")
        data, stat = found
        owner_data = self._get(paths.claim(job_id)) if origin == "jobs" else None
        owner: dict[str, Any] | None = None
        if owner_data is not None:
            with contextlib.suppress(DocumentError):
                owner = decode_object(owner_data[0])
            if not force:
                raise AlreadyClaimed(job_id, owner)
        hold = _hold_token(owner)
        try:
            stored = decode_object(data)
            document: dict[str, Any] | None = validate_job(
                job_id, stored.get("job") if origin == "parked" else stored
            )
            raw = None
        except DocumentError:
            document, raw = None, data
        entry = trash_entry(reason, origin, document=document, raw=raw)
        entry["token"] = token
        record = encode(entry)

        def build(tx: Any) -> None:
            tx.create(paths.trashed(job_id), record, self.ctx.acl)
            tx.delete(origin_path, version=stat.version)
            if owner_data is not None:
                tx.delete(paths.claim(job_id), version=owner_data[1].version)
            if hold is not None:  # the holder's marker: its later operations must fail
                tx.delete(paths.hold(job_id, hold))

        self._commit(build, (BadVersionError, NoNodeError))
        return True

    def restore(self, job_id: str, document: dict[str, Any] | None = None) -> Job:
        """Put a dead letter back on the board, same id, attempts reset. A garbage document
        needs a replacement `document` (a schema-1 job document with this id)."""
        check_job_id(job_id)
        result: Job = self._loop(
            job_id,
            lambda: self._restore_once(job_id, document),
            lambda: self._on_board(job_id),
        )
        return result

    def _on_board(self, job_id: str) -> Job | None:
        """After a connection loss: the job if it is on the board and out of the trash."""
        found = self._get(self.ctx.paths.job(job_id))
        if found is None or self._get(self.ctx.paths.trashed(job_id)) is not None:
            return None
        try:
            return Job(job_id, JobState.UNCLAIMED, decode_job(job_id, found[0]))
        except DocumentError:
            return None

    def _restore_once(self, job_id: str, replacement: dict[str, Any] | None) -> Job:
        paths = self.ctx.paths
        found = self._get(paths.trashed(job_id))
        if found is None:
            raise JobNotFound(job_id, "not in the trash")
        data, stat = found
        try:
            stored = decode_object(data).get("job") if replacement is None else replacement
            document = dict(validate_job(job_id, stored))
        except DocumentError as error:
            raise InvalidInput(
                f"job {job_id} cannot be restored as stored ({error}); pass a fixed document"
            ) from None
        document["attempts"] = 0
        job_data = encode_job(document)

        def build(tx: Any) -> None:
            tx.create(paths.job(job_id), job_data, self.ctx.acl)
            tx.delete(paths.trashed(job_id), version=stat.version)

        try:
            self._commit(build, (BadVersionError,))
        except NodeExistsError:
            raise BoardError(f"job {job_id} is already on the board") from None
        return Job(job_id, JobState.UNCLAIMED, document)

    # -- wake / update -----------------------------------------------------------------------
    def wake(self, job_id: str, updates: dict[str, Any] | None = None) -> bool:
        """Make a parked job claimable again (same id, same place in the order).

        False (and nothing changed) when the job is not parked, e.g. already woken."""
        check_job_id(job_id)
        woken: bool = self._loop(
            job_id,
            lambda: self._wake_once(job_id, updates),
            lambda: True if self._on_board(job_id) else None,
        )
        return woken

    def _wake_once(self, job_id: str, updates: dict[str, Any] | None) -> bool:
        paths = self.ctx.paths
        found = self._get(paths.parked_job(job_id))
        if found is None:
            return False
        data, stat = found
        try:
            document = validate_job(job_id, decode_object(data).get("job"))
        except DocumentError as error:
            reason = f"parked entry unreadable: {error}"
            path = paths.parked_job(job_id)
            dead_letter(self.ctx, job_id, path, data, stat.version, reason=reason)
            raise InvalidJob(job_id, reason) from None
        job_data = encode_job(merge_updates(document, updates))

        def build(tx: Any) -> None:
            tx.create(paths.job(job_id), job_data, self.ctx.acl)
            tx.delete(paths.parked_job(job_id), version=stat.version)

        self._commit(build, (BadVersionError, NoNodeError))
        return True

    def update(self, job_id: str, updates: dict[str, Any]) -> Job:
        """Merge `updates` into a pending (claimed or not) or parked job's document; the holder
        of a claim on it is notified."""
        check_job_id(job_id)
        merge_updates({}, updates)  # validate before reading anything
        result: Job = self._loop(job_id, lambda: self._update_once(job_id, updates))
        return result

    def _update_once(self, job_id: str, updates: dict[str, Any]) -> Job:
        paths, client = self.ctx.paths, self.ctx.client
        found = self._get(paths.job(job_id))
        if found is not None:
            data, stat = found
            try:
                document = merge_updates(decode_job(job_id, data), updates)
            except DocumentError as error:
                path = paths.job(job_id)
                dead_letter(self.ctx, job_id, path, data, stat.version, reason=str(error))
                raise InvalidJob(job_id, str(error)) from None
            try:
                client.set(paths.job(job_id), encode_job(document), version=stat.version)
            except (BadVersionError, NoNodeError):
                raise _Retry() from None
            return Job(job_id, JobState.UNCLAIMED, document)
        found = self._get(paths.parked_job(job_id))
        if found is None:
            raise JobNotFound(job_id, "neither pending nor parked")
        data, stat = found
        try:
            entry = decode_object(data)
            document = merge_updates(validate_job(job_id, entry.get("job")), updates)
        except DocumentError as error:
            reason = f"parked entry unreadable: {error}"
            path = paths.parked_job(job_id)
            dead_letter(self.ctx, job_id, path, data, stat.version, reason=reason)
            raise InvalidJob(job_id, reason) from None
        entry["job"] = document
        encode_job(document)
        try:
            client.set(paths.parked_job(job_id), encode(entry), version=stat.version)
        except (BadVersionError, NoNodeError):
            raise _Retry() from None
        return Job(job_id, JobState.PARKED, document, until=entry.get("until"))
