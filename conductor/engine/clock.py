"""Time for the runner: read the time, and wait for an event or a deadline.

The runner never sleeps: it waits on its event queue (task completions, control requests)
until the next deadline (a retry's not_before, a task's timeout, a stop's grace period).
FakeClock makes those deadlines testable without real waiting.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Protocol

TICK = object()
"""Put on a runner's queue to make it look at the time and its controls again."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def wait(self, events: queue.SimpleQueue[Any], deadline: float | None, busy: bool) -> Any:
        """The next event, or TICK once `deadline` (if any) has passed. `busy`: attempts are in
        flight (a fake clock only jumps ahead when nothing is)."""
        ...


class SystemClock:
    """Real time (time.time) and real blocking waits."""

    def now(self) -> float:
        return time.time()

    def wait(self, events: queue.SimpleQueue[Any], deadline: float | None, busy: bool) -> Any:
        if deadline is None:
            return events.get()
        try:
            return events.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            return TICK


class FakeClock:
    """Time that moves only when told, or by itself when nothing runs.

    When no attempt is in flight and the runner waits for a deadline (a retry backoff), the
    clock jumps to it at once; when attempts are in flight it waits for real events, and a test
    moves time with `advance()` (e.g. past a task's timeout). Every wait and jump is recorded.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._waiters: list[queue.SimpleQueue[Any]] = []
        self.jumps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.put(TICK)

    def wait(self, events: queue.SimpleQueue[Any], deadline: float | None, busy: bool) -> Any:
        try:
            return events.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if deadline is not None and (not busy or self._now >= deadline):
                if deadline > self._now:
                    self.jumps.append(deadline - self._now)
                    self._now = deadline
                return TICK
            self._waiters.append(events)
        try:
            return events.get()
        finally:
            with self._lock:
                self._waiters.remove(events)
