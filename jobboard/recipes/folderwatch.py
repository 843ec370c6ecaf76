"""The direct children of one folder as they come and go, pushed by a persistent recursive
watch (jobboard.zk.zkwatch): no polling, and no request while nothing changes.

`on_child(name, created)` gets every child created or deleted; `on_listing(names)` gets the
whole folder after the watch is (re-)added on every connection, so the owner can catch up with
what it missed while disconnected. Both run on kazoo's callback thread, in order with each
other: they must only update in-memory state (idempotently: a listing can replay what events
said) and never block. Deeper nodes and data changes are not reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from kazoo.exceptions import KazooException
from kazoo.protocol.states import EventType, WatchedEvent

from jobboard.protocol.context import board_errors
from jobboard.zk.zkwatch import PersistentRecursiveWatch

if TYPE_CHECKING:
    from jobboard.board import JobBoard

ChildListener = Callable[[str, bool], None]
ListingListener = Callable[[list[str]], None]


class FolderWatch:
    """Watches the children of `folder` (a folder below the board's root)."""

    def __init__(self, board: JobBoard, folder: str, on_child: ChildListener,
                 on_listing: ListingListener,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.board = board
        self.client = board.client
        self.folder = folder
        self._prefix = folder + "/"
        self._on_child = on_child
        self._on_listing = on_listing
        self._watch = PersistentRecursiveWatch(self.client, folder, self._on_event,
                                               self._list, on_error)
        self._started = False

    def start(self) -> None:
        """Create the folder if it is missing (with the board's ACL), then watch it (now if
        connected, else at the next connection)."""
        with board_errors(f"create {self.folder}"):
            self.client.ensure_path(self.folder, self.board.acl)
        self._watch.start()
        self._started = True

    def stop(self) -> None:
        """Stop watching (the server drops the watch with the connection anyway if this
        cannot reach it)."""
        if self._started:
            self._started = False
            with contextlib.suppress(KazooException):
                self._watch.stop()

    def _on_event(self, event: WatchedEvent) -> None:
        name = event.path[len(self._prefix):] if event.path.startswith(self._prefix) else ""
        if name and "/" not in name and event.type in (EventType.CREATED, EventType.DELETED):
            self._on_child(name, event.type == EventType.CREATED)

    def _list(self) -> None:
        self._on_listing(self.client.get_children(self.folder))
