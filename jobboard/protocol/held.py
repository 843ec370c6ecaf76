"""Claims held by this board, and how their holders learn they changed or were lost.

Fed by the board's persistent watches (job deleted, claim deleted, job document changed) and by
session events (LOST). A claim is marked lost at once (its `lost` event is set on the thread that
learns it), and its listeners are called on the board's event thread.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from kazoo.exceptions import ConnectionLoss, NoNodeError, SessionExpiredError

from jobboard.model import Claim
from jobboard.protocol.context import BoardContext
from jobboard.protocol.documents import DocumentError, decode_job

log = logging.getLogger(__name__)


class HeldClaims:
    """job id -> Claim for the claims this board holds."""

    def __init__(self, ctx: BoardContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._claims: dict[str, Claim] = {}
        # CHANGED events our own claim multi-ops will cause: no read needed for those.
        self._own_changes: Counter[str] = Counter()
        # Jobs we completed, parked or trashed whose deletion event has not arrived yet.
        self._ended: set[str] = set()

    def add(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.job_id] = claim

    def remove(self, claim: Claim) -> None:
        with self._lock:
            if self._claims.get(claim.job_id) is claim:
                del self._claims[claim.job_id]

    def job_leaving(self, job_id: str) -> None:
        """We are about to remove the job from jobs/ (complete, park, trash): keep excluding
        it from our candidates until its deletion event arrives (forget_ended if we fail)."""
        with self._lock:
            self._ended.add(job_id)

    def not_claimable_by_us(self) -> set[str]:
        """Jobs the view may still show as claimable although we hold or just ended them."""
        with self._lock:
            return set(self._claims) | self._ended

    def forget_ended(self, job_ids: set[str] | None = None) -> None:
        """The view caught up (deletion seen, or a fresh listing): stop excluding those."""
        with self._lock:
            if job_ids is None:
                self._ended.clear()
            else:
                self._ended -= job_ids

    def get(self, job_id: str) -> Claim | None:
        with self._lock:
            return self._claims.get(job_id)

    def all(self) -> list[Claim]:
        with self._lock:
            return list(self._claims.values())

    def expect_own_change(self, job_id: str) -> None:
        """Our next claim multi will change the job document: skip its CHANGED event."""
        with self._lock:
            self._own_changes[job_id] += 1

    def forget_own_change(self, job_id: str) -> None:
        """The multi failed or its event may be lost: expect nothing."""
        with self._lock:
            self._own_changes.pop(job_id, None)

    def lose(self, claim: Claim, reason: str) -> None:
        """Mark `claim` lost (once) and notify its listeners."""
        self.remove(claim)
        if claim.lost.is_set():
            return
        claim.lost_reason = reason
        claim.lost.set()
        log.info("claim on job %s lost: %s", claim.job_id, reason)
        self.ctx.events.call(lambda: claim._notify("lost"))

    def lose_all(self, reason: str) -> None:
        for claim in self.all():
            self.lose(claim, reason)

    # -- watch events (kazoo's callback thread) ------------------------------------------------
    def claim_removed(self, job_id: str) -> None:
        claim = self.get(job_id)
        if claim is not None and not claim.closing:
            self.lose(claim, "the claim node was removed by someone else")

    def job_removed(self, job_id: str) -> None:
        self.forget_ended({job_id})
        claim = self.get(job_id)
        if claim is not None and not claim.closing:
            self.lose(claim, "the job was removed from the board by someone else")

    def job_changed(self, job_id: str) -> None:
        """Tell the holder the job document changed (e.g. a cancel flag was set)."""
        with self._lock:
            if self._own_changes.get(job_id):
                self._own_changes[job_id] -= 1
                if not self._own_changes[job_id]:
                    del self._own_changes[job_id]
                return
        self._refresh(job_id)

    def _refresh(self, job_id: str) -> None:
        claim = self.get(job_id)
        if claim is None or claim.closing or claim.lost.is_set():
            return
        try:
            data, stat = self.ctx.client.get(self.ctx.paths.job(job_id))
            document = decode_job(job_id, data)
        except (NoNodeError, ConnectionLoss, SessionExpiredError, DocumentError):
            return  # removal and reconnection are handled by their own events
        # A later claim would have raised `attempts`: only a document of our claim is adopted.
        if stat.version <= claim.version or document["attempts"] != claim.document["attempts"]:
            return
        if document == claim.document:
            return
        claim.document = document
        self.ctx.events.call(lambda: claim._notify("changed"))

    def verify_after_resync(self, claimed_ids: set[str]) -> None:
        """After a reconnection: claims whose node is gone or not ours any more are lost."""
        with self._lock:
            self._own_changes.clear()  # their events may have been lost with the connection
        for claim in self.all():
            if claim.closing:
                continue
            if claim.job_id not in claimed_ids:
                self.lose(claim, "the claim node disappeared while disconnected")
                continue
            stat = self.ctx.client.exists(self.ctx.paths.claim(claim.job_id))
            if stat is None or stat.czxid != claim.epoch:
                self.lose(claim, "the claim node was replaced while disconnected")
            else:
                self._refresh(claim.job_id)
