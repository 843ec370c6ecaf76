"""Presence of conductors and workers: ephemeral `<root>/<kind>/<id>` nodes with their identity.

A registration is renewed automatically whenever a new session starts (after LOST). A node left
by one of *our* earlier sessions (an ephemeral briefly outlives its session) is deleted
(version-checked) and recreated; a live node of someone else is a DuplicateMember, raised by
`register` and reported as a DUPLICATE_MEMBER board event on automatic re-registration (the board
then registers as soon as that node goes away).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.protocol.states import Callback, WatchedEvent

from jobboard.errors import DuplicateMember
from jobboard.model import BoardEvent, BoardEventKind
from jobboard.protocol.context import TRANSIENT, BoardContext
from jobboard.protocol.documents import DocumentError, check_json_object, decode_object, encode

log = logging.getLogger(__name__)


class Presence:
    """register / unregister / members for one board."""

    def __init__(self, ctx: BoardContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._registered: dict[tuple[str, str], dict[str, Any]] = {}
        self._started = time.time()
        ctx.session.on_new_session(self._renew_all)

    def register(
        self, kind: str, member_id: str, info: dict[str, Any] | None = None, wait: float = 0.0
    ) -> dict[str, Any]:
        """Create the presence node; kept across sessions until `unregister`.

        `wait` seconds: how long to wait for another session's node of the same id to vanish
        (e.g. this member restarting before its old session expired) before DuplicateMember."""
        path = self.ctx.paths.member(kind, member_id)
        extra = check_json_object(info or {}, "member info")
        deadline = time.monotonic() + wait
        while True:
            try:
                document = self._create(path, member_id, extra)
                break
            except DuplicateMember as duplicate:
                if not self._wait_gone(path, deadline):
                    raise DuplicateMember(kind, member_id, duplicate.session) from None
        with self._lock:
            self._registered[(kind, member_id)] = extra
        return document

    def unregister(self, kind: str, member_id: str) -> None:
        """Stop renewing and delete our node (a node of another session is left alone)."""
        path = self.ctx.paths.member(kind, member_id)
        with self._lock:
            self._registered.pop((kind, member_id), None)
        stat = self.ctx.read(self.ctx.client.exists, path)
        if stat is not None and stat.ephemeralOwner == self.ctx.session.session_id:
            with contextlib.suppress(NoNodeError, BadVersionError):
                self.ctx.read(self.ctx.client.delete, path, version=stat.version)

    def members(self, kind: str) -> list[dict[str, Any]]:
        """Every registered member of `kind` with its identity document."""
        return self.ctx.read(self._members, kind)

    def _members(self, kind: str) -> list[dict[str, Any]]:
        client, folder = self.ctx.client, self.ctx.paths.members(kind)
        try:
            names = client.get_children(folder)
        except NoNodeError:
            return []
        reads = {name: client.get_async(f"{folder}/{name}") for name in names}
        found = []
        for name, read in sorted(reads.items()):
            try:
                data, _ = read.get()
                found.append(decode_object(data))
            except NoNodeError:
                continue
            except DocumentError:
                found.append({"id": name, "unreadable": True})
        return found

    # -- internals ---------------------------------------------------------------------------
    def _document(self, member_id: str, extra: dict[str, Any]) -> dict[str, Any]:
        session_id = self.ctx.session.session_id or 0
        return {
            **extra,
            "id": member_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self._started,
            "session": f"{session_id:016x}",
        }

    def _create(self, path: str, member_id: str, extra: dict[str, Any]) -> dict[str, Any]:
        """One registration attempt (retried across connection loss)."""
        client = self.ctx.client
        while True:
            document = self._document(member_id, extra)
            data = encode(document)
            try:
                self.ctx.read(
                    client.create, path, data, self.ctx.acl, ephemeral=True, makepath=True
                )
                return document
            except NodeExistsError:
                pass
            stat = self.ctx.read(client.exists, path)
            if stat is None:
                continue
            owner = stat.ephemeralOwner
            if owner == self.ctx.session.session_id:
                self.ctx.read(client.set, path, data)  # ours already (e.g. a retried create)
                return document
            if self.ctx.session.is_past_session(owner):
                with contextlib.suppress(NoNodeError, BadVersionError):  # our own leftover
                    self.ctx.read(client.delete, path, version=stat.version)
                continue
            kind = path.rsplit("/", 2)[-2]
            raise DuplicateMember(kind, member_id, owner)

    def _wait_gone(self, path: str, deadline: float) -> bool:
        """Wait (watch-driven) until `path` is deleted; False at the deadline."""
        gone = threading.Event()

        def watcher(event: WatchedEvent) -> None:
            gone.set()

        if self.ctx.read(self.ctx.client.exists, path, watch=watcher) is None:
            return True
        remaining = deadline - time.monotonic()
        return remaining > 0 and gone.wait(remaining)

    def _renew_all(self) -> None:
        """New session: re-register everything (on kazoo's callback thread)."""
        with self._lock:
            registered = list(self._registered.items())
        for (kind, member_id), extra in registered:
            self._renew(kind, member_id, extra)

    def _renew(self, kind: str, member_id: str, extra: dict[str, Any]) -> None:
        path = self.ctx.paths.member(kind, member_id)
        try:
            self._create(path, member_id, extra)
            log.info("%s member %s re-registered in the new session", kind, member_id)
        except DuplicateMember as duplicate:
            self.ctx.events.emit(
                BoardEvent(
                    BoardEventKind.DUPLICATE_MEMBER,
                    {"kind": kind, "id": member_id, "session": duplicate.session},
                )
            )
            self._retry_when_gone(kind, member_id, extra, path)
        except TRANSIENT:
            log.info("re-registration of %s %s deferred to the next session", kind, member_id)

    def _retry_when_gone(self, kind: str, member_id: str, extra: dict[str, Any], path: str) -> None:
        def watcher(event: WatchedEvent) -> None:
            with self._lock:
                still_wanted = (kind, member_id) in self._registered
            if still_wanted:
                self.ctx.client.handler.dispatch_callback(
                    Callback("watch", self._renew, (kind, member_id, extra))
                )

        try:
            if self.ctx.client.exists(path, watch=watcher) is None:
                watcher(WatchedEvent(None, None, path))
        except TRANSIENT:
            pass  # the next new session renews it

