"""An election of one leader among the contenders of a board: kazoo's Lock recipe, kept in
`<root>/keeper` (BoardPaths.keeper), whose folder and lock nodes carry the board's ACL.

The deadline keeper of the conductors uses it: every conductor contends, one leads. The leader
must step down when its session is LOST (its lock node went with it, and another contender may
lead already): `lost` is set then, and `on_lost` is called, on kazoo's connection thread, so it
must only flag or notify, never block or call ZooKeeper.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from kazoo.client import KazooState
from kazoo.exceptions import CancelledError, KazooException
from kazoo.recipe.lock import Lock

from jobboard.protocol.context import board_errors

if TYPE_CHECKING:
    from jobboard.board import JobBoard


class Election:
    """Contends for leadership of `path` (default: the board's keeper folder) as `identifier`.

    `contend()` blocks until elected; `resign()` steps down; `cancel()` ends a pending or
    future `contend()` from another thread. Lock nodes are created with the client's
    `default_acl`, which JobBoard aligns with the board's ACL.
    """

    def __init__(self, board: JobBoard, identifier: str, path: str | None = None, *,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.board = board
        self.client = board.client
        self.identifier = identifier
        self.path = path or board.paths.keeper
        self.lost = threading.Event()
        """Set when the session was lost after the last `contend()` began: leadership is gone."""
        self._on_lost = on_lost
        self._cancelled = threading.Event()
        self._lock: Lock | None = None

    def check_folder(self) -> None:
        """Create the election's folder with the board's ACL, or check (with repair_acls,
        repair) an existing one's: AclMismatch, NotAuthorized, BoardUnavailable."""
        self.board.ensure_folder(self.path)

    def start(self) -> None:
        """Begin following the session (for `lost`); undone by `close()`."""
        self.client.add_listener(self._on_state)

    def close(self) -> None:
        """Cancel contending and stop following the session."""
        self.cancel()
        self.client.remove_listener(self._on_state)

    def contend(self) -> bool:
        """Block until elected (True), or until `cancel()` (False). ZooKeeper trouble raises a
        BoardError (BoardUnavailable for a lost connection): contend again later."""
        with board_errors(f"contend in the election at {self.path}"):
            self.client.ensure_path(self.path, self.board.acl)
            lock = self._lock = Lock(self.client, self.path, self.identifier)
            if self._cancelled.is_set():  # cancelled before this lock existed to be cancelled
                return False
            self.lost.clear()
            try:
                return bool(lock.acquire())
            except CancelledError:
                return False

    def resign(self) -> None:
        """Step down (the lock node goes with the session anyway if this fails)."""
        lock = self._lock
        if lock is not None:
            with contextlib.suppress(KazooException):
                lock.release()

    def cancel(self) -> None:
        """Make a blocked `contend()` return False, and every later one."""
        self._cancelled.set()
        lock = self._lock
        if lock is not None:
            lock.cancel()

    def _on_state(self, state: KazooState) -> bool:
        # kazoo's connection thread: only flag and notify.
        if state == KazooState.LOST:
            self.lost.set()
            if self._on_lost is not None:
                self._on_lost()
        return False
