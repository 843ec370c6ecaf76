"""Feed the claimable view and the held claims from two persistent recursive watches.

jobs/ and claims/ are watched recursively: each created/deleted job or claim is one event applied
in O(log n) to the view; a claim never fires anybody's jobs watch with a re-listing. After each
(re)connection each watch is re-added, then its folder is listed once (the resync). An idle board
sends no request at all beyond kazoo's session pings.
"""

from __future__ import annotations

import logging
import threading
import time

from kazoo.protocol.states import EventType, WatchedEvent

from jobboard.model import BoardEvent, BoardEventKind
from jobboard.protocol.context import BoardContext
from jobboard.protocol.held import HeldClaims
from jobboard.protocol.view import ClaimableView
from jobboard.zk.zkwatch import PersistentRecursiveWatch

log = logging.getLogger(__name__)


class BoardWatcher:
    """Owns the view; started lazily by the first claim (producers never pay for it)."""

    def __init__(self, ctx: BoardContext, held: HeldClaims) -> None:
        self.ctx = ctx
        self.held = held
        self.view = ClaimableView()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._jobs_synced = threading.Event()
        self._claims_synced = threading.Event()
        self._jobs_prefix = ctx.paths.jobs + "/"
        self._claims_prefix = ctx.paths.claims + "/"
        self._watches = [
            PersistentRecursiveWatch(
                ctx.client, ctx.paths.jobs, self._on_job_event, self._resync_jobs, self._on_error
            ),
            PersistentRecursiveWatch(
                ctx.client,
                ctx.paths.claims,
                self._on_claim_event,
                self._resync_claims,
                self._on_error,
            ),
        ]
        self.resyncs = 0  # how many folder listings were made (tests and bench read it)
        self._error: BaseException | None = None

    def start(self, timeout: float | None = None) -> None:
        """Start watching (once) and wait until the view holds a first full listing."""
        with self._lock:
            if self._closed:
                return
            if not self._started:
                self._started = True
                for watch in self._watches:
                    watch.start()
        deadline = time.monotonic() + (self.ctx.op_timeout if timeout is None else timeout)
        for synced in (self._jobs_synced, self._claims_synced):
            synced.wait(max(deadline - time.monotonic(), 0.0))
        if self._error is not None:
            raise self._error

    @property
    def started(self) -> bool:
        return self._started

    def stop(self) -> None:
        """Stop for good (the board is closing)."""
        with self._lock:
            self._closed = True
            if not self._started:
                return
            self._started = False
        for watch in self._watches:
            try:
                watch.stop()
            except Exception:
                log.debug("could not remove a persistent watch", exc_info=True)

    # -- kazoo's callback thread -------------------------------------------------------------
    @staticmethod
    def _child(path: str, prefix: str) -> str | None:
        if not path.startswith(prefix):
            return None
        name = path[len(prefix) :]
        return name if name and "/" not in name else None

    def _on_job_event(self, event: WatchedEvent) -> None:
        job_id = self._child(event.path, self._jobs_prefix)
        if job_id is None:
            return
        if event.type == EventType.CREATED:
            self.view.job_created(job_id)
        elif event.type == EventType.DELETED:
            self.view.job_deleted(job_id)
            self.held.job_removed(job_id)
        elif event.type == EventType.CHANGED:
            self.held.job_changed(job_id)

    def _on_claim_event(self, event: WatchedEvent) -> None:
        job_id = self._child(event.path, self._claims_prefix)
        if job_id is None:
            return
        if event.type == EventType.CREATED:
            self.view.claim_created(job_id)
        elif event.type == EventType.DELETED:
            self.view.claim_deleted(job_id)
            self.held.claim_removed(job_id)

    def _resync_jobs(self) -> None:
        children = self.ctx.client.get_children(self.ctx.paths.jobs)
        self.resyncs += 1
        self.view.reset_jobs(children)
        self.held.forget_ended()
        present = set(children)
        for claim in self.held.all():
            if claim.job_id not in present and not claim.closing:
                self.held.lose(claim, "the job left the board while disconnected")
        self._jobs_synced.set()

    def _resync_claims(self) -> None:
        children = self.ctx.client.get_children(self.ctx.paths.claims)
        self.resyncs += 1
        self.view.reset_claims(children)
        self.held.verify_after_resync(set(children))
        self._claims_synced.set()

    def _on_error(self, error: BaseException) -> None:
        self._error = error
        self._jobs_synced.set()
        self._claims_synced.set()
        self.ctx.events.emit(BoardEvent(BoardEventKind.WATCH_ERROR, {"error": str(error)}))
