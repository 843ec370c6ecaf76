"""What a conductor's job runs share: the board, the store, the registry, policy and liveness."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from conductor.daemon.backoff import Backoff
from conductor.engine.control import RunControl
from conductor.engine.dispatch import Dispatcher
from conductor.registry import Registry
from jobboard.board import JobBoard
from persistence.contract import ExecutionStore


@dataclass(frozen=True)
class Policy:
    """When a conductor gives up on a job (dead-letters it) instead of retrying it."""

    max_crashes: int = 3
    """Owners in a row that may die holding the job, without the execution making progress in
    between, before the job is dead-lettered as a poison pill."""
    max_declines: int = 20
    """Releases by conductors that lack the job's flow before the job is dead-lettered."""
    grace: float = 30.0
    """Seconds a stopping conductor waits for the tasks in flight before releasing its jobs."""


class Liveness:
    """The run controls of the jobs in progress, told what the ZooKeeper connection is doing.

    Connection events arrive on the board's event thread: SUSPENDED pauses every run (no new
    task starts while the session may be gone), RECONNECTED resumes them, LOST aborts them
    (their claims are gone; another conductor may already own the jobs). `may_start` is the
    gate a run checks right before starting a task: the session must be provably alive.
    """

    def __init__(self, board: JobBoard) -> None:
        self._board = board
        self._lock = threading.Lock()
        self._controls: set[RunControl] = set()
        self._suspended = False

    def add(self, control: RunControl) -> None:
        with self._lock:
            self._controls.add(control)
            suspended = self._suspended
        if suspended:
            control.pause()

    def remove(self, control: RunControl) -> None:
        with self._lock:
            self._controls.discard(control)

    def controls(self) -> list[RunControl]:
        with self._lock:
            return list(self._controls)

    def suspended(self) -> None:
        with self._lock:
            self._suspended = True
            controls = list(self._controls)
        for control in controls:
            control.pause()

    def resumed(self) -> None:
        with self._lock:
            self._suspended = False
            controls = list(self._controls)
        for control in controls:
            control.resume()

    def lost(self) -> None:
        with self._lock:
            self._suspended = False
            controls = list(self._controls)
        for control in controls:
            control.abort()

    def may_start(self) -> bool:
        """True while the board's session is known alive (see JobBoard.session_alive)."""
        return not self._suspended and self._board.session_alive()


@dataclass
class Services:
    """Everything a JobRun needs from its conductor."""

    name: str
    owner: str
    board: JobBoard
    store: ExecutionStore
    registry: Registry
    dispatcher: Dispatcher
    policy: Policy
    liveness: Liveness
    backoff: Backoff
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("conductor"))
    callback_url: str | None = None
    """Base URL of the HTTP callback endpoint (for the handles of delegations), if any."""
