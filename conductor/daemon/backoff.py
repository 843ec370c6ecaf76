"""Jobs this conductor leaves alone for a while (declined or released after a transient error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Backoff:
    """Per-job "not before" times with exponential growth per job; thread-safe.

    A conductor that gives a job back because of something local (it lacks the flow, its
    database is down) must not grab the same job again at once; others may take it meanwhile.
    """

    def __init__(self, base: float, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_hold: Callable[[], None] | None = None) -> None:
        self.base = base
        self.on_hold = on_hold  # told after every hold (the claimer recomputes what it skips)
        self.cap = cap
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._strikes: dict[str, tuple[int, float]] = {}  # job -> (strikes, last hold)

    def hold(self, job_id: str) -> float:
        """Leave `job_id` alone for base * 2**(strikes) seconds (capped); returns the delay."""
        with self._lock:
            now = self._clock()
            strikes = self._strikes.get(job_id, (0, now))[0]
            delay: float = min(self.cap, self.base * 2.0**strikes)
            self._strikes[job_id] = (strikes + 1, now)
            self._until[job_id] = now + delay
        if self.on_hold is not None:
            self.on_hold()
        return delay

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._until.pop(job_id, None)
            self._strikes.pop(job_id, None)

    def held(self) -> tuple[frozenset[str], float | None]:
        """Jobs held now, and seconds until the earliest hold ends (None if none)."""
        now = self._clock()
        with self._lock:
            for job_id in [j for j, until in self._until.items() if until <= now]:
                del self._until[job_id]
            forgotten = now - 4 * self.cap  # a job quiet that long starts again from `base`
            for job_id in [j for j, (_, last) in self._strikes.items() if last < forgotten]:
                del self._strikes[job_id]
            if not self._until:
                return frozenset(), None
            return frozenset(self._until), max(0.0, min(self._until.values()) - now)
