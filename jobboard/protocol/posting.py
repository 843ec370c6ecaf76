"""Post jobs: validated documents, producer-chosen ids, idempotency keys, retry-safe.

With a key, one multi-op creates keys/<key> (data = job id) and jobs/<id>: a second post with the
same key finds the key and returns the first job, wherever it now is, creating nothing. After a
connection loss the post looks for its own job (by id and uuid) before trying again, so a retry
never posts twice.
"""

from __future__ import annotations

from typing import Any

from kazoo.exceptions import NodeExistsError, NoNodeError

from jobboard.errors import BoardError, JobNotFound
from jobboard.model import Job, JobState
from jobboard.protocol.context import BoardContext, commit, first_failure
from jobboard.protocol.documents import encode_job, new_job_document
from jobboard.protocol.naming import JobIdGenerator, check_name, check_priority
from jobboard.protocol.reading import Reader

_KEY_ATTEMPTS = 3


class Poster:
    """The producer side of one board."""

    def __init__(self, ctx: BoardContext, reader: Reader) -> None:
        self.ctx = ctx
        self.reader = reader
        self.ids = JobIdGenerator()

    def post(
        self,
        name: str,
        flow: str,
        inputs: dict[str, Any],
        priority: int = 0,
        key: str | None = None,
    ) -> Job:
        check_priority(priority)
        if key is not None:
            check_name("idempotency key", key)
        for _ in range(_KEY_ATTEMPTS):
            document = new_job_document(
                self.ids.new_id(priority),
                name=name,
                flow=flow,
                inputs=inputs,
                priority=priority,
                key=key,
            )
            job = self._post_once(document, encode_job(document), key)
            if job is not None:
                return job
        raise BoardError(f"post with key {key!r}: its job kept disappearing; try again")

    def _post_once(self, document: dict[str, Any], data: bytes, key: str | None) -> Job | None:
        if key is None:
            return self.ctx.write(
                lambda: self._create(document, data), lambda: self._find_own(document)
            )
        return self.ctx.write(
            lambda: self._create_keyed(document, data, key), lambda: self._find_keyed(document, key)
        )

    def _create(self, document: dict[str, Any], data: bytes) -> Job:
        job_id = document["id"]
        try:
            self.ctx.client.create(self.ctx.paths.job(job_id), data, self.ctx.acl)
        except NoNodeError:
            raise BoardError(f"board folder {self.ctx.paths.jobs} is missing") from None
        except NodeExistsError:
            raise BoardError(f"job id {job_id} is already taken (id collision)") from None
        return Job(job_id, JobState.UNCLAIMED, document)

    def _find_own(self, document: dict[str, Any]) -> Job | None:
        """After a connection loss: our job if the create was applied (same uuid)."""
        try:
            job = self.reader.get(document["id"])
        except JobNotFound:
            return None
        if job.document is None or job.document.get("uuid") != document["uuid"]:
            raise BoardError(f"job id {document['id']} is already taken (id collision)")
        return job

    def _create_keyed(self, document: dict[str, Any], data: bytes, key: str) -> Job | None:
        job_id = document["id"]

        def build(tx: Any) -> None:
            tx.create(self.ctx.paths.key(key), job_id.encode(), self.ctx.acl)
            tx.create(self.ctx.paths.job(job_id), data, self.ctx.acl)

        failure = first_failure(commit(self.ctx.client, build))
        if failure is None:
            return Job(job_id, JobState.UNCLAIMED, document)
        index, error = failure
        if index == 0 and isinstance(error, NodeExistsError):
            return self._find_keyed(document, key)
        if isinstance(error, NoNodeError):
            raise BoardError(f"board folders under {self.ctx.paths.root} are missing")
        if isinstance(error, NodeExistsError):
            raise BoardError(f"job id {job_id} is already taken (id collision)")
        raise error

    def _find_keyed(self, document: dict[str, Any], key: str) -> Job | None:
        """The job the key names: ours (a retried post) or the first post's, wherever it is.

        None when the key does not exist (nothing applied: post again) or names a job that was
        just purged (post again: the key is free now).
        """
        try:
            data, _ = self.ctx.client.get(self.ctx.paths.key(key))
        except NoNodeError:
            return None
        first_id = data.decode("utf-8", "replace")
        if first_id == document["id"]:
            return Job(first_id, JobState.UNCLAIMED, document)
        try:
            return self.reader.get(first_id)
        except JobNotFound:
            return None
