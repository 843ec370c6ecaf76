"""In-memory view of the claimable backlog, kept up to date one change at a time.

Sets of job ids and claimed ids, and a heap of candidate ids with lazy deletion (an id that was
claimed or removed is dropped when it reaches the top). Every update is an idempotent set
operation, so replaying events after a resync converges. Finding the best claimable jobs costs
O(k log n); nothing here talks to ZooKeeper.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterable

from jobboard.protocol.naming import is_job_id, priority_band


class ClaimableView:
    """Claimable = jobs - claimed, ordered by id (priority, then FIFO)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._jobs: set[str] = set()
        self._claimed: set[str] = set()
        self._heap: list[str] = []
        self._in_heap: set[str] = set()
        self.generation = 0  # bumped on every change; waiters compare it

    # -- updates (each wakes waiters) -------------------------------------------------------
    def job_created(self, job_id: str) -> None:
        if not is_job_id(job_id):
            return
        with self.condition:
            self._jobs.add(job_id)
            self._push_if_claimable(job_id)
            self._changed()

    def job_deleted(self, job_id: str) -> None:
        with self.condition:
            self._jobs.discard(job_id)
            self._changed()

    def claim_created(self, job_id: str) -> None:
        with self.condition:
            self._claimed.add(job_id)
            self._changed()

    def claim_deleted(self, job_id: str) -> None:
        with self.condition:
            self._claimed.discard(job_id)
            self._push_if_claimable(job_id)
            self._changed()

    def reset_jobs(self, job_ids: Iterable[str]) -> None:
        """Replace the job set with a fresh listing (after a (re)connection)."""
        with self.condition:
            self._jobs = {job_id for job_id in job_ids if is_job_id(job_id)}
            self._rebuild()

    def reset_claims(self, job_ids: Iterable[str]) -> None:
        """Replace the claimed set with a fresh listing (after a (re)connection)."""
        with self.condition:
            self._claimed = set(job_ids)
            self._rebuild()

    def _rebuild(self) -> None:
        self._heap = sorted(self._jobs - self._claimed)
        self._in_heap = set(self._heap)
        self._changed()

    def _push_if_claimable(self, job_id: str) -> None:
        if job_id in self._jobs and job_id not in self._claimed and job_id not in self._in_heap:
            heapq.heappush(self._heap, job_id)
            self._in_heap.add(job_id)

    def _changed(self) -> None:
        self.generation += 1
        self.condition.notify_all()

    # -- queries -----------------------------------------------------------------------------
    def candidates(self, limit: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Up to `limit` claimable ids of the best priority band, best first (caller holds or
        not the condition: the lock is re-entrant)."""
        with self.condition:
            chosen: list[str] = []
            skipped: list[str] = []
            band: str | None = None
            heap = self._heap
            while heap and len(chosen) < limit:
                top = heap[0]
                if top not in self._jobs or top in self._claimed:
                    heapq.heappop(heap)
                    self._in_heap.discard(top)
                    continue
                if top in exclude:
                    skipped.append(heapq.heappop(heap))
                    continue
                if band is None:
                    band = priority_band(top)
                elif priority_band(top) != band:
                    break
                chosen.append(heapq.heappop(heap))
            for job_id in chosen + skipped:
                heapq.heappush(heap, job_id)
            return chosen

    def wait_for_change(self, generation: int, deadline: float | None) -> bool:
        """Block until the view changes after `generation` (True) or the deadline passes."""
        with self.condition:
            while self.generation == generation:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.condition.wait(remaining)
            return True

    def is_claimable(self, job_id: str) -> bool:
        with self.condition:
            return job_id in self._jobs and job_id not in self._claimed

    def is_claimed(self, job_id: str) -> bool:
        with self.condition:
            return job_id in self._claimed

    def counts(self) -> tuple[int, int]:
        """(jobs, claimed) currently known."""
        with self.condition:
            return len(self._jobs), len(self._claimed)

    def claimable(self) -> list[str]:
        """Every claimable id in order (O(n log n): for tests and status, not the hot path)."""
        with self.condition:
            return sorted(self._jobs - self._claimed)
