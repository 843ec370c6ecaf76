"""What the elected deadline keeper knows: parked jobs with their deadlines, and completion
intents; fed by watch events, consumed by the keeper's own thread.

Watch events and resyncs (kazoo's callback thread) only update these sets and notify the
condition; the keeper thread does every ZooKeeper call. Nothing here reads ZooKeeper or a clock
by itself, so the rules are testable without either.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from jobboard.recipes.intents import Intent, parse_intent


@dataclass
class Work:
    """What the keeper must do now."""

    unread: list[str] = field(default_factory=list)  # parked jobs whose deadline is unknown
    orphans: list[Intent] = field(default_factory=list)  # completions whose completer died
    due: list[tuple[str, float]] = field(default_factory=list)  # (job, until) now passed

    def __bool__(self) -> bool:
        return bool(self.unread or self.orphans or self.due)


class KeeperView:
    """Parked jobs (job -> until) and completion intents, guarded by `condition`."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._until: dict[str, float | None] = {}  # known parked jobs
        self._unread: set[str] = set()
        self._heap: list[tuple[float, str, float]] = []  # (when to act, job, its until)
        self._pending: dict[str, Intent] = {}  # intent name -> intent
        self._live: set[str] = set()  # intent names whose completer is alive
        self._orphans: dict[str, Intent] = {}

    # -- watch events (kazoo's callback thread) ---------------------------------------------
    def parked_created(self, job_id: str) -> None:
        with self.condition:
            self._until[job_id] = None
            self._unread.add(job_id)
            self.condition.notify_all()

    def parked_deleted(self, job_id: str) -> None:
        with self.condition:
            self._until.pop(job_id, None)
            self._unread.discard(job_id)

    def parked_event(self, job_id: str, created: bool) -> None:
        if created:
            self.parked_created(job_id)
        else:
            self.parked_deleted(job_id)

    def reset_parked(self, job_ids: Iterable[str]) -> None:
        """A fresh listing of parked/: every entry is read again."""
        with self.condition:
            self._until = dict.fromkeys(job_ids)
            self._unread = set(self._until)
            self._heap = []
            self.condition.notify_all()

    def intent_event(self, name: str, created: bool) -> None:
        found = parse_intent(name)
        if found is None:
            return
        intent, live = found
        with self.condition:
            if live and created:
                self._live.add(intent.name)
            elif live:
                self._live.discard(intent.name)
                if intent.name in self._pending:  # its completer is gone, the intent stayed
                    self._orphans[intent.name] = self._pending[intent.name]
                    self.condition.notify_all()
            elif created:
                self._pending[intent.name] = intent
            else:
                self._pending.pop(intent.name, None)
                self._orphans.pop(intent.name, None)

    def reset_intents(self, names: Iterable[str]) -> None:
        """A fresh listing of the completions folder: intents without a live completer are
        orphans."""
        pending: dict[str, Intent] = {}
        live: set[str] = set()
        for name in names:
            found = parse_intent(name)
            if found is None:
                continue
            intent, is_live = found
            if is_live:
                live.add(intent.name)
            else:
                pending[intent.name] = intent
        with self.condition:
            self._pending, self._live = pending, live
            self._orphans = {n: i for n, i in pending.items() if n not in live}
            if self._orphans:
                self.condition.notify_all()

    # -- the keeper's thread ---------------------------------------------------------------
    def take(self, now: float) -> Work:
        """Everything to do at `now` (removed from the view; give back with retry_*)."""
        with self.condition:
            return self._take(now)

    def _take(self, now: float) -> Work:
        work = Work(unread=sorted(self._unread), orphans=list(self._orphans.values()))
        self._unread.clear()
        self._orphans.clear()
        while self._heap and self._heap[0][0] <= now:
            _, job_id, until = heapq.heappop(self._heap)
            if job_id in self._until and self._until[job_id] == until:
                work.due.append((job_id, until))
        return work

    def has_work(self) -> bool:
        """Deadlines to read or orphaned completions to finish (not counting due deadlines)."""
        with self.condition:
            return bool(self._unread or self._orphans)

    def next_due(self) -> float | None:
        """When the earliest known deadline falls (stale heap entries are dropped)."""
        with self.condition:
            while self._heap:
                when, job_id, until = self._heap[0]
                if job_id in self._until and self._until[job_id] == until:
                    return when
                heapq.heappop(self._heap)
            return None

    def deadlines_read(self, found: dict[str, float | None]) -> None:
        """The `until` read for parked jobs (jobs gone meanwhile are ignored)."""
        with self.condition:
            for job_id, until in found.items():
                if job_id not in self._until:
                    continue
                self._until[job_id] = until
                if until is not None:
                    heapq.heappush(self._heap, (until, job_id, until))

    def retry_due(self, job_id: str, until: float, at: float) -> None:
        """Waking the job failed: try again at `at` (if it is still parked with `until`)."""
        with self.condition:
            if self._until.get(job_id) == until:
                heapq.heappush(self._heap, (at, job_id, until))

    def retry_orphan(self, intent: Intent) -> None:
        with self.condition:
            if intent.name in self._pending:
                self._orphans[intent.name] = intent

    def counts(self) -> tuple[int, int, int]:
        """(parked jobs known, with a deadline scheduled, completion intents) for status."""
        with self.condition:
            return len(self._until), len(self._heap), len(self._pending)
