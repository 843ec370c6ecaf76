"""Follow the client's ZooKeeper session: connection events, new sessions, the session anchor.

The session anchor `<root>/sessions/<sid:016x>` is an ephemeral node of session `sid`, created
lazily once per session. Board multi-ops start with `check(anchor)`, so they fail unless the
session the caller believes it is in is still live: a claim is provably that session's, and a
holder whose session expired cannot complete or release anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, NodeExistsError, NoNodeError
from kazoo.protocol.states import Callback
from kazoo.security import ACL

from jobboard.model import BoardEvent, BoardEventKind
from jobboard.protocol.events import EventDispatcher
from jobboard.protocol.naming import BoardPaths

log = logging.getLogger(__name__)


class SessionChanged(ConnectionLoss):  # type: ignore[misc]
    """The session changed under us while creating its anchor; retry in the new one."""


class SessionTracker:
    """Session id, past session ids, connection state events and new-session hooks.

    The kazoo state listener runs on kazoo's connection thread: it only records the state and
    enqueues (board events on the event thread, ZooKeeper work on kazoo's callback thread).
    """

    def __init__(
        self, client: KazooClient, paths: BoardPaths, acl: list[ACL], events: EventDispatcher
    ) -> None:
        self.client = client
        self.paths = paths
        self.acl = acl
        self.events = events
        self._lock = threading.Lock()
        self._anchor_lock = threading.Lock()
        self._connected = threading.Event()
        client_id = client.client_id
        self._session_id: int | None = client_id[0] if client_id else None
        if client_id:
            self._connected.set()
        self._past: set[int] = set()
        self._anchored: int | None = None
        self._new_session_hooks: list[Callable[[], None]] = []
        self._lost_hooks: list[Callable[[], None]] = []
        client.add_listener(self._on_state)

    def close(self) -> None:
        self.client.remove_listener(self._on_state)

    # -- hooks -------------------------------------------------------------------------------
    def on_new_session(self, hook: Callable[[], None]) -> None:
        """Run `hook()` on kazoo's callback thread whenever a new session starts (after LOST)."""
        self._new_session_hooks.append(hook)

    def on_lost(self, hook: Callable[[], None]) -> None:
        """Run `hook()` at once when the session is LOST, on kazoo's connection thread: it must
        not block nor call ZooKeeper (it marks claims lost and queues notifications)."""
        self._lost_hooks.append(hook)

    # -- state -------------------------------------------------------------------------------
    @property
    def session_id(self) -> int | None:
        """The current session id (None before the first connection)."""
        return self._session_id

    def is_past_session(self, session_id: int) -> bool:
        """True for a session this board had before (its ephemeral nodes are stale leftovers)."""
        with self._lock:
            return session_id in self._past

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or `timeout` seconds passed (False)."""
        return self._connected.wait(max(timeout, 0.0))

    def _on_state(self, state: KazooState) -> None:
        if state == KazooState.LOST:
            self._connected.clear()
            self.events.emit(BoardEvent(BoardEventKind.LOST, {"session": self._session_id}))
            for hook in self._lost_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("session-lost hook failed")
        elif state == KazooState.SUSPENDED:
            self._connected.clear()
            self.events.emit(BoardEvent(BoardEventKind.SUSPENDED, {"session": self._session_id}))
        elif state == KazooState.CONNECTED:
            self._on_connected()

    def _on_connected(self) -> None:
        session_id = self.client._session_id
        with self._lock:
            previous = self._session_id
            self._session_id = session_id
            new_session = previous is not None and previous != session_id
            if new_session and previous is not None:
                self._past.add(previous)
        self._connected.set()
        if previous is None:
            return
        if new_session:
            self.events.emit(
                BoardEvent(BoardEventKind.NEW_SESSION, {"session": session_id, "old": previous})
            )
            for hook in self._new_session_hooks:
                self.client.handler.dispatch_callback(Callback("watch", hook, ()))
        else:
            self.events.emit(BoardEvent(BoardEventKind.RECONNECTED, {"session": session_id}))

    # -- anchor ------------------------------------------------------------------------------
    def forget_anchor(self, session_id: int) -> None:
        """The anchor of `session_id` was found missing: create it again on next use."""
        with self._anchor_lock:
            if self._anchored == session_id:
                self._anchored = None

    def ensure_anchor(self) -> int:
        """The live session id, with its anchor node created (once per session)."""
        with self._anchor_lock:
            client_id = self.client.client_id
            if client_id is None:
                raise ConnectionLoss("not connected")
            session_id: int = client_id[0]
            if self._anchored == session_id:
                return session_id
            path = self.paths.session(session_id)
            info = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
            try:
                _, stat = self.client.create(
                    path, json.dumps(info).encode(), self.acl, ephemeral=True, include_data=True
                )
            except NodeExistsError:
                stat = self.client.exists(path)
                if stat is None:
                    raise SessionChanged("session anchor vanished while checking it") from None
            if stat.ephemeralOwner != session_id:
                # Created after kazoo switched to a new session: not an anchor of `session_id`.
                with contextlib.suppress(NoNodeError):
                    self.client.delete(path, version=stat.version)
                raise SessionChanged("session changed while creating its anchor")
            self._anchored = session_id
            return session_id
