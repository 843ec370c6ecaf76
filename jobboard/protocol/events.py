"""The board's own event thread: delivers board events and claim notifications to the user.

kazoo's state listener and watch callbacks only enqueue here, so a slow user callback never
blocks kazoo's connection or callback threads, and the user sees events in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from jobboard.model import BoardEvent

log = logging.getLogger(__name__)

BoardListener = Callable[[BoardEvent], None]
_STOP = object()


class EventDispatcher:
    """Runs queued callables (and delivers board events to listeners) on one daemon thread."""

    def __init__(self, name: str = "jobboard-events") -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._listeners: list[BoardListener] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add_listener(self, listener: BoardListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: BoardListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def emit(self, event: BoardEvent) -> None:
        """Queue `event` for every listener (never blocks)."""
        self._queue.put(event)

    def call(self, function: Callable[[], None]) -> None:
        """Queue `function` to run on the event thread (never blocks)."""
        self._queue.put(function)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the thread."""
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, BoardEvent):
                with self._lock:
                    listeners = list(self._listeners)
                for listener in listeners:
                    self._safely(listener, item)
            elif callable(item):
                self._safely(item)

    @staticmethod
    def _safely(function: Callable[..., object], *args: object) -> None:
        try:
            function(*args)
        except Exception:
            log.exception("board event callback %r failed", function)
