"""Persistent (recursive) watches for kazoo: ZooKeeper 3.6+ `addWatch`, which kazoo 2.11 lacks.

A persistent recursive watch on a folder delivers one event per created, deleted or changed node
anywhere below it, and stays armed after firing: a view of the folder can then be kept up to date
at O(1) cost per change instead of re-reading every child on every change.

The extension is small and contained:
- `AddWatch` / `RemoveWatches` requests (opcodes 106 / 18), sent through the client's normal
  request queue;
- a registry of persistent watchers kept on the client's connection handler, whose class is
  swapped for a subclass that also dispatches each watch event to the persistent watchers
  registered on the event's path (or, recursive, on an ancestor), through
  `client.handler.dispatch_callback` like kazoo's one-shot watches: never on the connection thread.

Kazoo does not restore watches after a reconnection, and the server drops them with the
connection. `PersistentRecursiveWatch` therefore re-adds its watch on every (re)connection and then
calls a resync hook, both on kazoo's callback thread so that events queued behind them apply after
the resync (view updates must be idempotent so that replays converge).

Server limitation (ZooKeeper < 3.9, ZOOKEEPER-4466): per connection, a path keeps one watch mode,
the last one set. So never mix modes on one path (refused here), and never set a one-shot watch
(kazoo's exists/get/get_children with watch=) on the very path of a persistent watch with the same
client: it would silently turn it into a one-shot watch. Nodes below it are fine.

kazoo internals used: `KazooClient._call`, `.chroot`, `.unchroot`, `._stopped`, `._state`,
`._connection` and `ConnectionHandler._read_watch_event`. pyproject pins kazoo>=2.10,<2.12; the
tests in tests/jobboard/test_zkwatch.py pin the behaviour.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict, namedtuple
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    NoWatcherError,
    SessionExpiredError,
    UnimplementedError,
)
from kazoo.protocol.connection import ConnectionHandler
from kazoo.protocol.paths import _prefix_root
from kazoo.protocol.serialization import Watch, int_struct, write_string
from kazoo.protocol.states import EVENT_TYPE_MAP, Callback, WatchedEvent

from jobboard.errors import ZooKeeperTooOld

log = logging.getLogger(__name__)

PERSISTENT = 0
PERSISTENT_RECURSIVE = 1
_REMOVE_ANY = 3  # WatcherType.Any: 3.8 servers cannot remove one persistent mode (4, 5)
_NODE_EVENTS = (1, 2, 3)  # created, deleted, data changed: what recursive watches deliver
_CHILD_EVENT = 4

WatchCallback = Callable[[WatchedEvent], Any]


class AddWatch(namedtuple("AddWatch", "path mode")):
    """ZooKeeper 3.6+ addWatch request: path and mode (0 persistent, 1 persistent recursive)."""

    type = 106

    def serialize(self) -> bytes:
        body: bytes = bytes(write_string(self.path)) + int_struct.pack(self.mode)
        return body

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> bool:
        return True


class RemoveWatches(namedtuple("RemoveWatches", "path watcher_type")):
    """removeWatches request: path and watcher type (3 = any: every watch of ours on the path)."""

    type = 18

    def serialize(self) -> bytes:
        body: bytes = bytes(write_string(self.path)) + int_struct.pack(self.watcher_type)
        return body

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> bool:
        return True


class PersistentWatchRegistry:
    """Persistent watchers by full (chrooted) path and mode; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[tuple[str, int], set[WatchCallback]] = defaultdict(set)

    def add(self, path: str, mode: int, callback: WatchCallback) -> None:
        with self._lock:
            other = (path, PERSISTENT if mode == PERSISTENT_RECURSIVE else PERSISTENT_RECURSIVE)
            if self._watchers.get(other):
                raise ValueError(
                    f"{path} already has a persistent watch of the other mode on this client; "
                    "a ZooKeeper 3.8 server keeps only the last mode per path (ZOOKEEPER-4466)"
                )
            self._watchers[(path, mode)].add(callback)

    def remove(self, path: str, mode: int, callback: WatchCallback) -> bool:
        """Forget a watcher; True when no watcher is left on (path, mode)."""
        with self._lock:
            callbacks = self._watchers.get((path, mode))
            if callbacks is None:
                return True
            callbacks.discard(callback)
            if not callbacks:
                del self._watchers[(path, mode)]
                return True
            return False

    def matching(self, path: str, event_type: int) -> list[WatchCallback]:
        """Watchers an event of `event_type` on `path` is for (O(depth of path))."""
        found: list[WatchCallback] = []
        with self._lock:
            if not self._watchers:
                return found
            if event_type in _NODE_EVENTS or event_type == _CHILD_EVENT:
                found.extend(self._watchers.get((path, PERSISTENT), ()))
            if event_type in _NODE_EVENTS:
                ancestor = path
                while True:
                    found.extend(self._watchers.get((ancestor, PERSISTENT_RECURSIVE), ()))
                    if ancestor == "/":
                        break
                    ancestor = ancestor.rsplit("/", 1)[0] or "/"
        return found


class PersistentWatchConnectionHandler(ConnectionHandler):  # type: ignore[misc]
    """kazoo's connection handler that also serves persistent watchers."""

    _persistent_watches: PersistentWatchRegistry

    def _read_watch_event(self, buffer: bytes, offset: int) -> None:
        watch, _ = Watch.deserialize(buffer, offset)
        callbacks = self._persistent_watches.matching(watch.path, watch.type)
        if watch.type in EVENT_TYPE_MAP:
            super()._read_watch_event(buffer, offset)  # kazoo's one-shot watchers
        client = self.client
        if not callbacks or client._stopped.is_set():
            return
        event = WatchedEvent(EVENT_TYPE_MAP[watch.type], client._state, client.unchroot(watch.path))
        for callback in callbacks:
            client.handler.dispatch_callback(Callback("watch", callback, (event,)))


def registry_of(client: KazooClient) -> PersistentWatchRegistry:
    """The client's persistent watch registry, installing the extension on first use."""
    connection = client._connection
    if isinstance(connection, PersistentWatchConnectionHandler):
        return connection._persistent_watches
    if type(connection) is not ConnectionHandler:
        raise TypeError(
            f"cannot add persistent watches to a client whose connection handler is "
            f"{type(connection).__name__} (expected kazoo's ConnectionHandler)"
        )
    connection._persistent_watches = PersistentWatchRegistry()
    connection.__class__ = PersistentWatchConnectionHandler
    return connection._persistent_watches  # type: ignore[no-any-return]


def _full_path(client: KazooClient, path: str) -> str:
    return _prefix_root(client.chroot, path)  # type: ignore[no-any-return]


def add_watch_async(client: KazooClient, path: str, callback: WatchCallback, mode: int) -> Any:
    """Register `callback` and send addWatch(path, mode); returns kazoo's async result."""
    full = _full_path(client, path)
    registry_of(client).add(full, mode, callback)
    result = client.handler.async_result()
    client._call(AddWatch(full, mode), result)
    return result


def add_watch(client: KazooClient, path: str, callback: WatchCallback, mode: int) -> None:
    """Synchronous add_watch_async; a server older than 3.6 raises ZooKeeperTooOld."""
    try:
        add_watch_async(client, path, callback, mode).get()
    except UnimplementedError as error:
        raise ZooKeeperTooOld(
            "the ZooKeeper server does not implement addWatch: ZooKeeper 3.6+ is required"
        ) from error


def remove_watch(client: KazooClient, path: str, callback: WatchCallback, mode: int) -> None:
    """Forget `callback`; when it was the last one on (path, mode), remove the server's watch."""
    full = _full_path(client, path)
    if not registry_of(client).remove(full, mode, callback):
        return
    if not client.connected:
        return
    result = client.handler.async_result()
    client._call(RemoveWatches(full, _REMOVE_ANY), result)
    with contextlib.suppress(NoWatcherError, ConnectionLoss, SessionExpiredError):
        result.get()  # those errors mean no server-side watch is left: nothing to remove


class PersistentRecursiveWatch:
    """A persistent recursive watch on `path` that survives reconnections and new sessions.

    `on_event(event)` gets every created/deleted/changed event below `path`; `on_resync()` runs
    after the watch is (re-)added on each connection, so the owner can re-read what it missed.
    Both run on kazoo's callback thread, in order with the events.
    """

    def __init__(
        self,
        client: KazooClient,
        path: str,
        on_event: WatchCallback,
        on_resync: Callable[[], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.client = client
        self.path = path
        self._on_event = on_event
        self._on_resync = on_resync
        self._on_error = on_error
        self._active = False

    def start(self) -> None:
        """Begin watching (now if connected, else at the next connection)."""
        self._active = True
        registry_of(self.client).add(
            _full_path(self.client, self.path), PERSISTENT_RECURSIVE, self._on_event
        )
        self.client.add_listener(self._on_state)
        if self.client.connected:
            self._schedule()

    def stop(self) -> None:
        """Stop watching and remove the server-side watch when we were its last user."""
        self._active = False
        self.client.remove_listener(self._on_state)
        remove_watch(self.client, self.path, self._on_event, PERSISTENT_RECURSIVE)

    def _on_state(self, state: KazooState) -> None:
        # Runs on the connection thread: never call ZooKeeper here, only schedule.
        if state == KazooState.CONNECTED and self._active:
            self._schedule()

    def _schedule(self) -> None:
        self.client.handler.dispatch_callback(Callback("watch", self._establish, ()))

    def _establish(self) -> None:
        if not self._active:
            return
        try:
            add_watch(self.client, self.path, self._on_event, PERSISTENT_RECURSIVE)
            self._on_resync()
        except (ConnectionLoss, SessionExpiredError, ConnectionClosedError) as error:
            # The next CONNECTED state schedules another attempt.
            log.debug("persistent watch on %s not re-established yet: %r", self.path, error)
        except Exception as error:
            if isinstance(error, ZooKeeperTooOld):
                self._active = False  # retrying on every reconnection cannot help
            log.exception("persistent watch on %s could not be established", self.path)
            if self._on_error is not None:
                self._on_error(error)
