"""The claim protocol: claim, release, complete, park and trash a held job, each one multi-op.

claim  = get job (doc + version), then [check anchor(my session), create claims/<id> (ephemeral,
         owner JSON with a unique token), set_data jobs/<id> (attempts+1, version-checked),
         create holds/<id>.<token> (ephemeral)]. The epoch is the set_data's mzxid (= the claim
         node's czxid): it only grows.
holder = [delete holds/<id>.<token>, ...delete claims/<id>, delete or set jobs/<id> with the
         claim's job version...]: it fails (changing nothing) unless this very claim still
         lasts. The hold marker is ephemeral, so it is gone once the claim's session has expired;
         and whatever ends the claim (a holder operation, an operator's forced trash) deletes it
         in the same multi-op. Job versions alone would not do: a job node recreated by restore
         or wake starts again at version 0, so a later claim can carry an old claim's version.
Every claim raises `attempts`, so the job version checked by a holder cannot match once anyone
else has claimed the same job node; after a concurrent `update` the holder re-verifies its claim
(job read first, then its claim node by token) and retries.
"""

from __future__ import annotations

import functools
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from jobboard.errors import (
    AlreadyClaimed,
    BoardError,
    ClaimConflict,
    ClaimLost,
    InvalidInput,
    InvalidJob,
    JobNotFound,
)
from jobboard.model import Claim
from jobboard.protocol.context import BoardContext, commit, first_failure
from jobboard.protocol.deadletter import dead_letter
from jobboard.protocol.documents import (
    DocumentError,
    cap_outcome,
    decode_job,
    decode_object,
    encode,
    encode_job,
    merge_updates,
    trash_entry,
)
from jobboard.protocol.held import HeldClaims
from jobboard.protocol.naming import check_job_id, check_name

MAX_ATTEMPTS = 8


class _Retry(Exception):
    """The job document changed under us; read it again and retry."""


class ClaimProtocol:
    """Claims of one board; `before_claim` starts the board's watches on first use."""

    def __init__(
        self, ctx: BoardContext, held: HeldClaims, before_claim: Callable[[], None]
    ) -> None:
        self.ctx = ctx
        self.held = held
        self._before_claim = before_claim
        self._host = socket.gethostname()

    # -- claim -------------------------------------------------------------------------------
    def claim(
        self, job_id: str, owner_id: str, name_owner: bool = True, read_ahead: Any = None
    ) -> Claim:
        """Claim `job_id`; AlreadyClaimed names the owner (read only if `name_owner`).

        `read_ahead`: an async get of the job issued earlier, used by the first attempt (the
        version check makes a stale one harmless)."""
        check_job_id(job_id)
        check_name("owner id", owner_id)
        self._before_claim()
        token = uuid.uuid4().hex
        reads = [] if read_ahead is None else [read_ahead]  # used once: retries read again
        for _ in range(MAX_ATTEMPTS):
            attempt = functools.partial(self._try_claim, job_id, owner_id, token, name_owner, reads)
            try:
                return self.ctx.write(attempt, lambda: self._find_own_claim(job_id, token))
            except _Retry:
                continue
        raise ClaimConflict(f"job {job_id} kept changing while claiming it; try again later")

    def _try_claim(
        self, job_id: str, owner_id: str, token: str, name_owner: bool, reads: list[Any]
    ) -> Claim:
        paths, client = self.ctx.paths, self.ctx.client
        session_id = self.ctx.session.ensure_anchor()
        read = reads.pop() if reads else client.get_async(paths.job(job_id))
        try:
            data, stat = read.get()
        except NoNodeError:
            raise JobNotFound(job_id, "not claimable (parked, finished or never posted)") from None
        try:
            document = decode_job(job_id, data)
        except DocumentError as error:
            dead_letter(self.ctx, job_id, paths.job(job_id), data, stat.version, reason=str(error))
            raise InvalidJob(job_id, str(error)) from None
        document["attempts"] += 1
        owner = {
            "id": owner_id,
            "host": self._host,
            "pid": os.getpid(),
            "since": time.time(),
            "session": f"{session_id:016x}",
            "token": token,
        }

        def build(tx: Any) -> None:
            tx.check(paths.session(session_id), -1)
            tx.create(paths.claim(job_id), encode(owner), self.ctx.acl, ephemeral=True)
            tx.set_data(paths.job(job_id), encode_job(document), version=stat.version)
            tx.create(paths.hold(job_id, token), b"", self.ctx.acl, ephemeral=True)

        self.held.expect_own_change(job_id)
        try:
            results = commit(client, build)
        except BaseException:
            self.held.forget_own_change(job_id)
            raise
        failure = first_failure(results)
        if failure is None:
            job_stat: Any = results[2]
            claim = Claim(job_id, document, job_stat.mzxid, session_id, owner, job_stat.version)
            self.held.add(claim)
            return claim
        self.held.forget_own_change(job_id)
        index, failed = failure
        if index == 0:
            self.ctx.session.forget_anchor(session_id)
            raise _Retry()
        if index == 1 and isinstance(failed, NodeExistsError):
            raise AlreadyClaimed(job_id, self._read_owner(job_id) if name_owner else None)
        if index == 2 and isinstance(failed, BadVersionError):
            raise _Retry()
        if index == 2 and isinstance(failed, NoNodeError):
            raise JobNotFound(job_id, "removed from the board while claiming it")
        raise failed

    def _read_owner(self, job_id: str) -> dict[str, Any] | None:
        try:
            data, _ = self.ctx.read(self.ctx.client.get, self.ctx.paths.claim(job_id))
            return decode_object(data)
        except (NoNodeError, DocumentError):
            return None

    def _find_own_claim(self, job_id: str, token: str) -> Claim | None:
        """After a connection loss: our claim if the multi was applied in the live session."""
        client, paths = self.ctx.client, self.ctx.paths
        job_read = client.get_async(paths.job(job_id))
        claim_read = client.get_async(paths.claim(job_id))
        try:
            data, stat = claim_read.get()
            owner = decode_object(data)
        except (NoNodeError, DocumentError):
            return None
        if owner.get("token") != token or stat.ephemeralOwner != self.ctx.session.session_id:
            return None
        try:
            job_data, job_stat = job_read.get()
            document = decode_job(job_id, job_data)
        except (NoNodeError, DocumentError):
            return None
        claim = Claim(job_id, document, stat.czxid, stat.ephemeralOwner, owner, job_stat.version)
        self.held.forget_own_change(job_id)
        self.held.add(claim)
        return claim

    # -- holder operations -------------------------------------------------------------------
    def release(self, claim: Claim, updates: dict[str, Any] | None = None) -> None:
        """Give the job back (merging `updates` into its document); others are notified."""
        merge_updates(claim.document, updates)  # validate before changing anything

        def build(tx: Any) -> None:
            tx.delete(self.ctx.paths.hold(claim.job_id, claim.token))
            tx.delete(self.ctx.paths.claim(claim.job_id))
            merged = merge_updates(claim.document, updates)
            tx.set_data(self.ctx.paths.job(claim.job_id), encode_job(merged), claim.version)

        def verify() -> bool | None:
            if self._still_ours(claim):
                return None
            if updates:
                doc = self._current_document(claim.job_id)
                if doc is None or any(doc.get(k) != v for k, v in updates.items()):
                    raise self._lost(claim, "the session ended before the release was applied")
            return True

        self._holder_op(
            claim,
            build,
            verify,
            {1: "the claim node is gone", 2: "job removed"},
            ending="released",
            job_left=False,
        )

    def complete(self, claim: Claim, outcome: dict[str, Any]) -> None:
        """Remove the job and its claim and store the outcome, atomically."""
        stored = cap_outcome(outcome)

        def build(tx: Any) -> None:
            entry = {
                "job": claim.document,
                "outcome": stored,
                "completed_at": time.time(),
                "claim": {"epoch": claim.epoch, "owner": claim.owner["id"], "token": claim.token},
            }
            tx.delete(self.ctx.paths.hold(claim.job_id, claim.token))
            tx.delete(self.ctx.paths.claim(claim.job_id))
            tx.delete(self.ctx.paths.job(claim.job_id), version=claim.version)
            tx.create(self.ctx.paths.outcome(claim.job_id), encode(entry), self.ctx.acl)

        self._holder_op(
            claim,
            build,
            lambda: self._moved_by_us(claim, self.ctx.paths.outcome(claim.job_id), "claim"),
            {1: "the claim node is gone", 2: "job removed", 3: "an outcome already exists"},
            ending="completed",
        )

    def park(
        self, claim: Claim, until: float | None = None, updates: dict[str, Any] | None = None
    ) -> None:
        """Move the job to parked/ (not claimable) until `wake`; the claim ends."""
        if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
            raise InvalidInput(f"until must be seconds since the epoch or None, got {until!r}")
        merge_updates(claim.document, updates)

        def build(tx: Any) -> None:
            merged = merge_updates(claim.document, updates)
            encode_job(merged)  # size limit of the job document
            entry = {
                "job": merged,
                "until": until,
                "parked_at": time.time(),
                "token": claim.token,
            }
            tx.delete(self.ctx.paths.hold(claim.job_id, claim.token))
            tx.create(self.ctx.paths.parked_job(claim.job_id), encode(entry), self.ctx.acl)
            tx.delete(self.ctx.paths.job(claim.job_id), version=claim.version)
            tx.delete(self.ctx.paths.claim(claim.job_id))

        self._holder_op(
            claim,
            build,
            lambda: self._moved_by_us(claim, self.ctx.paths.parked_job(claim.job_id), "token"),
            {1: "the job is already parked", 2: "job removed", 3: "the claim node is gone"},
            ending="parked",
        )

    def trash(self, claim: Claim, reason: str) -> None:
        """Dead-letter the held job with `reason`."""

        def build(tx: Any) -> None:
            entry = trash_entry(reason, "jobs", document=claim.document)
            entry["token"] = claim.token
            tx.delete(self.ctx.paths.hold(claim.job_id, claim.token))
            tx.create(self.ctx.paths.trashed(claim.job_id), encode(entry), self.ctx.acl)
            tx.delete(self.ctx.paths.job(claim.job_id), version=claim.version)
            tx.delete(self.ctx.paths.claim(claim.job_id))

        self._holder_op(
            claim,
            build,
            lambda: self._moved_by_us(claim, self.ctx.paths.trashed(claim.job_id), "token"),
            {1: "a trash entry already exists", 2: "job removed", 3: "the claim node is gone"},
            ending="trashed",
        )

    # -- shared holder machinery -------------------------------------------------------------
    def _holder_op(
        self,
        claim: Claim,
        build: Callable[[Any], None],
        verify: Callable[[], bool | None],
        reasons: dict[int, str],
        *,
        ending: str,
        job_left: bool = True,
    ) -> None:
        if claim.ended is not None:
            raise ClaimLost(claim.job_id, f"this claim has already ended ({claim.ended})")
        if claim.lost.is_set():
            raise ClaimLost(claim.job_id, claim.lost_reason or "lost earlier")
        claim.closing = True
        if job_left:
            self.held.job_leaving(claim.job_id)
        done = False
        try:
            for _ in range(MAX_ATTEMPTS):
                try:
                    self.ctx.write(lambda: self._attempt(claim, build, reasons), verify)
                    done = True
                    claim.ended = ending
                    self.held.remove(claim)
                    return
                except _Retry:
                    continue
            raise ClaimConflict(f"job {claim.job_id} kept changing; operation not applied")
        finally:
            if not done:
                claim.closing = False
                if job_left:
                    self.held.forget_ended({claim.job_id})

    def _attempt(
        self, claim: Claim, build: Callable[[Any], None], reasons: dict[int, str]
    ) -> bool:
        failure = first_failure(commit(self.ctx.client, build))
        if failure is None:
            return True
        index, error = failure
        if index == 0:
            raise self._lost(claim, "its session has expired or someone else ended it")
        if isinstance(error, BadVersionError):
            self._reverify(claim)
            raise _Retry()
        if isinstance(error, (NoNodeError, NodeExistsError)) and index in reasons:
            raise self._lost(claim, reasons[index])
        raise error

    def _reverify(self, claim: Claim) -> None:
        """The job changed: confirm the claim is still ours and adopt the job's new version.

        The job is read before the claim node: if the claim node is still ours afterwards, nobody
        claimed in between, so the version read is not another claimer's.
        """
        client, paths = self.ctx.client, self.ctx.paths
        job_read = client.get_async(paths.job(claim.job_id))
        claim_read = client.get_async(paths.claim(claim.job_id))
        if not self._is_ours(claim, claim_read):
            raise self._lost(claim, "it was taken over by another claim")
        try:
            data, stat = job_read.get()
            document = decode_job(claim.job_id, data)
        except NoNodeError:
            raise self._lost(claim, "the job was removed") from None
        except DocumentError as error:
            raise self._lost(claim, f"the job document became invalid: {error}") from None
        claim.document, claim.version = document, stat.version

    def _is_ours(self, claim: Claim, claim_read: Any) -> bool:
        try:
            data, stat = claim_read.get()
            owner = decode_object(data)
        except (NoNodeError, DocumentError):
            return False
        return owner.get("token") == claim.token and stat.ephemeralOwner == claim.session

    def _still_ours(self, claim: Claim) -> bool:
        return self._is_ours(claim, self.ctx.client.get_async(self.ctx.paths.claim(claim.job_id)))

    def _current_document(self, job_id: str) -> dict[str, Any] | None:
        try:
            data, _ = self.ctx.client.get(self.ctx.paths.job(job_id))
            return decode_job(job_id, data)
        except (NoNodeError, DocumentError):
            return None

    def _moved_by_us(self, claim: Claim, path: str, marker: str) -> bool | None:
        """After a connection loss: True if our multi created `path`, None if not applied."""
        try:
            data, _ = self.ctx.client.get(path)
            entry = decode_object(data)
        except (NoNodeError, DocumentError):
            entry = {}
        found = entry.get(marker)
        token = found.get("token") if isinstance(found, dict) else found
        if token == claim.token:
            return True
        if self._still_ours(claim):
            return None
        raise self._lost(claim, "the session ended before the operation was applied")

    def _lost(self, claim: Claim, reason: str) -> BoardError:
        self.held.lose(claim, reason)
        return ClaimLost(claim.job_id, reason)
