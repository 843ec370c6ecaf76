"""Requests to a running flow from outside: stop, pause/resume, abort, cancel.

The conductor daemon maps ZooKeeper events onto these: SUSPENDED -> pause, reconnected ->
resume, LOST -> abort, SIGTERM -> stop, a cancelled job -> cancel. Each request wakes the
runner at once (no polling).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from conductor.engine.clock import TICK


class RunControl:
    """Thread-safe flags a runner reads at every step. One control may serve several runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.SimpleQueue[Any]] = []
        self.stop_requested = False
        self.grace: float | None = None
        self.paused = False
        self.aborted = False
        self.cancelled = False
        self.gate: Callable[[], bool] | None = None
        """Asked right before each attempt starts, after its RUNNING state is saved: False
        holds the start (the conductor closes it while its ZooKeeper session is not provably
        alive). Held starts are looked at again every GATE_RECHECK seconds."""

    def may_start(self) -> bool:
        """Whether an attempt whose RUNNING state is saved may start now."""
        return not self.paused and (self.gate is None or self.gate())

    def stop(self, grace: float | None = None) -> None:
        """Start nothing new; wait up to `grace` seconds (None: as long as it takes) for the
        attempts in flight, save, and return SUSPENDED."""
        with self._lock:
            self.stop_requested = True
            self.grace = grace
        self._wake()

    def pause(self) -> None:
        """Start no new attempt until resume(); attempts in flight finish and are saved."""
        self.paused = True
        self._wake()

    def resume(self) -> None:
        self.paused = False
        self._wake()

    def abort(self) -> None:
        """Return at once and write nothing more (the claim is lost: another owner may be
        writing already). Attempts in flight are abandoned."""
        self.aborted = True
        self._wake()

    def cancel(self) -> None:
        """Start no new task and revert what completed; the run ends REVERTED (Cancelled)."""
        self.cancelled = True
        self._wake()

    def attach(self, events: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._queues.append(events)

    def detach(self, events: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            if events in self._queues:
                self._queues.remove(events)

    def _wake(self) -> None:
        with self._lock:
            queues = list(self._queues)
        for events in queues:
            events.put(TICK)
